"""Spec builders for tests: a small valid spec, and variations of its contract."""

from __future__ import annotations

import copy
from typing import Any

from tether.prompts.spec import PromptSpec

BASE: dict[str, Any] = {
    "name": "ticket",
    "version": "1.0.0",
    "description": "Route a support ticket.",
    "inputs": {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
    "output": {
        "schema": {
            "type": "object",
            "properties": {
                "queue": {"enum": ["billing", "tech", "sales"]},
                "urgent": {"type": "boolean"},
                "summary": {"type": "string"},
            },
            "required": ["queue", "urgent"],
        }
    },
    "messages": [
        {"role": "system", "content": "Route the ticket."},
        {"role": "user", "content": "{{ text }}"},
    ],
    "examples": [
        {"inputs": {"text": "refund please"}, "output": {"queue": "billing", "urgent": False}}
    ],
}


def spec_data(version: str = "1.0.0", **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["version"] = version
    data.update(changes)
    return data


def spec(version: str = "1.0.0", **changes: Any) -> PromptSpec:
    return PromptSpec.model_validate(spec_data(version, **changes))


def output_schema(data: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = data["output"]["schema"]
    return schema
