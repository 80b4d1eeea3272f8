"""The request fields that carry a contract to a server, and the answer turned back into the
contract's shape: one place for both, so what is sent and what is restored always agree."""

from __future__ import annotations

from typing import Any

from tether.messages import OutputSpec
from tether.providers.base import Capabilities
from tether.providers.schema_profiles.plan import JSON_OBJECT, wire_plan
from tether.providers.schema_profiles.profile import WirePlan
from tether.providers.schema_profiles.restore import restore

TOOL_DESCRIPTION = "Record the answer in the required structure."


def plan_of(spec: OutputSpec, capabilities: Capabilities) -> WirePlan:
    return wire_plan(spec.schema, spec.strict, capabilities)


def response_format(spec: OutputSpec, capabilities: Capabilities) -> tuple[dict[str, Any], bool]:
    """OpenAI's `response_format`, and whether the schema must also be given in a system
    message (JSON mode enforces no schema, and OpenAI wants the word JSON in the prompt)."""
    plan = plan_of(spec, capabilities)
    if plan.mode == "json_object":
        fmt: dict[str, Any] = {"type": "json_object"}
        if capabilities.schema_in_json_object and plan.schema != JSON_OBJECT:
            fmt["schema"] = plan.schema
        return fmt, True
    return {
        "type": "json_schema",
        "json_schema": {"name": spec.name, "schema": plan.schema, "strict": plan.strict},
    }, False


def forced_tool(spec: OutputSpec, capabilities: Capabilities) -> dict[str, Any]:
    """The tool whose input is the answer (Anthropic): strict when the plan enforces it."""
    plan = plan_of(spec, capabilities)
    return {
        "name": spec.name,
        "description": TOOL_DESCRIPTION,
        "input_schema": plan.schema,
        "strict": plan.strict and plan.mode == "json_schema",
    }


def restored(text: str, spec: OutputSpec | None, capabilities: Capabilities) -> str:
    """The answer in the contract's shape (see restore.py)."""
    if spec is None or capabilities.engine is None:
        return text
    return restore(text, plan_of(spec, capabilities), spec.schema)
