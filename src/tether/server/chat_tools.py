"""`tools`, `tool_choice` and `parallel_tool_calls` of a chat completion request, in OpenAI's
format. Every mistake is a 400 naming the field."""

from __future__ import annotations

import re
from typing import Any

from tether.errors import InvalidRequest
from tether.messages import Tool, ToolChoice, ToolSpec

# OpenAI's rule for function names (Anthropic's is the same).
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_CHOICES: tuple[ToolChoice, ...] = ("none", "auto", "required")
# A function declared without parameters takes none.
_NO_PARAMETERS = {"type": "object", "properties": {}}


def chat_tools(data: dict[str, Any]) -> ToolSpec | None:
    for legacy in ("functions", "function_call"):
        if data.get(legacy) is not None:  # null is absent, as OpenAI reads it
            raise InvalidRequest(
                f"`{legacy}` is not supported; declare functions in `tools`",
                param=legacy,
                fix="send `tools` and `tool_choice` (OpenAI's current format)",
            )
    raw = data.get("tools")
    choice_raw = data.get("tool_choice")
    parallel = data.get("parallel_tool_calls", True)
    if parallel is None:
        parallel = True
    if not isinstance(parallel, bool):
        raise InvalidRequest("`parallel_tool_calls` must be a boolean", param="parallel_tool_calls")
    if raw is None:
        if choice_raw is not None and choice_raw != "none":
            raise InvalidRequest(
                "`tool_choice` is only allowed when `tools` are given", param="tool_choice"
            )
        return None
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("`tools` must be a non-empty array", param="tools")
    tools = tuple(_tool(item, index) for index, item in enumerate(raw))
    names = [t.name for t in tools]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise InvalidRequest(
                f"tool name {name!r} is declared twice", param=f"tools[{index}].function.name"
            )
    choice, function = _choice(choice_raw, set(names))
    return ToolSpec(tools, choice, function, parallel)


def _tool(item: Any, index: int) -> Tool:
    at = f"tools[{index}]"
    if not isinstance(item, dict) or item.get("type") != "function":
        raise InvalidRequest(f'{at}.type must be "function"', param=f"{at}.type")
    function = item.get("function")
    if not isinstance(function, dict):
        raise InvalidRequest(f"{at}.function must be an object", param=f"{at}.function")
    name = function.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"{at}.function.name must be 1-64 letters, digits, _ or -",
            param=f"{at}.function.name",
        )
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidRequest(
            f"{at}.function.description must be a string", param=f"{at}.function.description"
        )
    parameters = function.get("parameters", _NO_PARAMETERS)
    if not isinstance(parameters, dict):
        raise InvalidRequest(
            f"{at}.function.parameters must be a JSON Schema object",
            param=f"{at}.function.parameters",
        )
    strict = function.get("strict") or False
    if not isinstance(strict, bool):
        raise InvalidRequest(
            f"{at}.function.strict must be a boolean", param=f"{at}.function.strict"
        )
    return Tool(name, parameters, description, strict)


def _choice(raw: Any, names: set[str]) -> tuple[ToolChoice, str | None]:
    if raw is None:
        return "auto", None
    if isinstance(raw, str):
        for choice in _CHOICES:
            if raw == choice:
                return choice, None
        raise InvalidRequest(
            "`tool_choice` must be none, auto, required or a function object",
            param="tool_choice",
        )
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("type") != "function" or not isinstance(function, dict):
        raise InvalidRequest(
            '`tool_choice` object must be {"type": "function", "function": {"name": ...}}',
            param="tool_choice",
        )
    name = function.get("name")
    if name not in names:
        raise InvalidRequest(
            f"`tool_choice.function.name` {name!r} is not one of the declared tools",
            param="tool_choice.function.name",
        )
    return "required", name
