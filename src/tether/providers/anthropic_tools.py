"""OpenAI-shaped conversations and tools mapped onto Anthropic's Messages API, and its tool use
read back.

- system turns → the `system` field; assistant tool calls → `tool_use` blocks; `tool` results
  → `tool_result` blocks in a user turn (consecutive results share one turn, as Anthropic asks).
- tools → `tools` with `input_schema`; tool_choice auto/required/named/none →
  `auto`/`any`/`tool`/`none`; `parallel_tool_calls: false` → `disable_parallel_tool_use`.
- a response's `tool_use` blocks → tool calls, stop_reason `tool_use` → `tool_calls`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from tether.errors import InvalidRequest
from tether.messages import Message, ToolCall, ToolSpec
from tether.tools import new_call_id


def anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """The system text and the turns of a Messages API request."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "assistant" and message.tool_calls:
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            blocks.extend(_tool_use(call) for call in message.tool_calls)
            turns.append({"role": "assistant", "content": blocks})
        elif message.role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            _user_blocks(turns).append(result)
        elif message.role == "user" and turns and _follows_results(turns[-1]):
            _user_blocks(turns).append({"type": "text", "text": message.content})
        else:
            turns.append({"role": message.role, "content": message.content})
    return system, turns


def _tool_use(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise InvalidRequest(
            f"tool call {call.id!r}: arguments must be a JSON object for Anthropic models",
            param="messages",
        )
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def _follows_results(turn: dict[str, Any]) -> bool:
    content = turn["content"]
    return turn["role"] == "user" and isinstance(content, list)


def _user_blocks(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The block list of the trailing user turn that holds tool results, started if needed."""
    if not turns or not _follows_results(turns[-1]):
        turns.append({"role": "user", "content": []})
    blocks: list[dict[str, Any]] = turns[-1]["content"]
    return blocks


def add_tools(args: dict[str, Any], tools: ToolSpec) -> None:
    """Declare `tools` in a request. Where the request already forces its answer tool (a
    contract), the model must call either that or one of these: `any`, or the named tool."""
    declared = [_declared(tool.name, tool.description, tool.parameters, tool.strict)
                for tool in tools.tools]  # fmt: skip
    answer = args.get("tools", [])
    args["tools"] = [*declared, *answer]
    choice: dict[str, Any]
    if tools.choice == "none":
        choice = args.get("tool_choice") or {"type": "none"}
    elif tools.function is not None:
        choice = {"type": "tool", "name": tools.function}
    elif tools.choice == "required" or answer:
        choice = {"type": "any"}
    else:
        choice = {"type": "auto"}
    if not tools.parallel and choice["type"] != "none":
        choice = {**choice, "disable_parallel_tool_use": True}
    args["tool_choice"] = choice


def _declared(name: str, description: str | None, parameters: Any, strict: bool) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name, "input_schema": dict(parameters)}
    if description is not None:
        tool["description"] = description
    if strict:
        tool["strict"] = True
    return tool


def read_tool_calls(blocks: Iterable[Any], *, answer_tool: str | None) -> tuple[ToolCall, ...]:
    """The response's `tool_use` blocks as calls, except the contract's own answer tool."""
    return tuple(
        ToolCall(
            id=getattr(block, "id", None) or new_call_id(),
            name=block.name,
            arguments=json.dumps(block.input, ensure_ascii=False),
        )
        for block in blocks
        if block.type == "tool_use" and block.name != answer_tool
    )


def finish_reason(stop_reason: str | None, calls: Sequence[ToolCall]) -> str:
    if calls:
        return "tool_calls"
    return "length" if stop_reason == "max_tokens" else "stop"
