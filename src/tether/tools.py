"""Tool calls as a contract: a call names a tool the request offered under its `tool_choice`,
and its arguments meet that tool's parameter schema. A call that does not is repaired like any
other output, within the same bound."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.contracts.contract import Contract
from tether.messages import Completion, Message, ToolCall, ToolSpec

TOOL_CALLS_CONTRACT = "tool_calls"


def new_call_id() -> str:
    """An id in OpenAI's shape, for calls whose provider gives none."""
    return "call_" + secrets.token_urlsafe(18).replace("-", "a").replace("_", "b")


def calls_json(calls: Sequence[ToolCall]) -> str:
    """The calls as one JSON text: how a failed attempt is logged and shown to the model."""
    return json.dumps(
        [{"name": c.name, "arguments": _parsed(c.arguments)} for c in calls], ensure_ascii=False
    )


def calls_output(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """A validated result's output: each call with its arguments parsed."""
    return [{"id": c.id, "name": c.name, "arguments": _parsed(c.arguments)} for c in calls]


def _parsed(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


@dataclass(frozen=True)
class ToolContracts:
    """The tools of one request with a contract per tool's parameters."""

    spec: ToolSpec
    contracts: Mapping[str, Contract[Any]]

    def applies(self, completion: Completion) -> bool:
        """Whether the completion is judged as tool use (it called, or it had to)."""
        return bool(completion.tool_calls) or self.spec.required

    def check(self, completion: Completion) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        calls = completion.tool_calls
        if not calls:
            wanted = self.spec.function or "one of the tools"
            return [], (f"a tool call is required: call {wanted} instead of answering in text",)
        errors: list[str] = []
        if self.spec.choice == "none":
            errors.append("no tool call is allowed here: answer in text")
        if len(calls) > 1 and not self.spec.parallel:
            errors.append(f"{len(calls)} tool calls were made; make exactly one")
        allowed = {t.name for t in self.spec.callable}
        for index, call in enumerate(calls):
            contract = self.contracts.get(call.name)
            if call.name not in allowed or contract is None:
                names = ", ".join(sorted(allowed)) or "none"
                errors.append(f"tool call {index} names {call.name!r}; allowed: {names}")
                continue
            check, _ = contract.check(call.arguments)
            errors.extend(f"tool call {index} ({call.name}) arguments {e}" for e in check.errors)
        return calls_output(calls), tuple(errors)


def tool_repair_messages(
    original: Sequence[Message], completion: Completion, errors: Sequence[str]
) -> tuple[Message, ...]:
    """The repair turn for tool use: the failed calls shown as text (a call without its
    result would not be a well-formed conversation), then what was wrong with them."""
    shown = completion.text
    if completion.tool_calls:
        shown = f"{shown}\n{calls_json(completion.tool_calls)}".strip()
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        *original,
        Message("assistant", shown),
        Message(
            "user",
            f"Those tool calls are not valid:\n{listed}\n"
            "Call the tool again with arguments that meet its parameter schema.",
        ),
    )
