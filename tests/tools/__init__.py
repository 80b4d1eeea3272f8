"""Tool calling tests; `weather_tool` is the function they offer."""

from __future__ import annotations

from typing import Any


def weather_tool(*, unit: bool = False, strict: bool = False) -> dict[str, Any]:
    """`get_weather(city[, unit])` as an OpenAI function tool; `strict` closes its parameters
    and asks for strict arguments."""
    properties: dict[str, Any] = {"city": {"type": "string"}}
    if unit:
        properties["unit"] = {"enum": ["c", "f"]}
    parameters: dict[str, Any] = {"type": "object", "properties": properties, "required": ["city"]}
    function: dict[str, Any] = {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": parameters,
    }
    if strict:
        parameters["additionalProperties"] = False
        function["strict"] = True
    return {"type": "function", "function": function}
