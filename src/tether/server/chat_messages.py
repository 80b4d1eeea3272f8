"""The `messages` of a chat completion request: text turns, assistant tool calls and tool
results, in OpenAI's format. Every mistake is a 400 naming the field."""

from __future__ import annotations

from typing import Any

from tether.errors import InvalidRequest
from tether.messages import Message, ToolCall

_ROLES = ("system", "developer", "user", "assistant", "tool")


def chat_messages(data: dict[str, Any]) -> tuple[Message, ...]:
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("`messages` must be a non-empty array", param="messages")
    return tuple(_message(item, index) for index, item in enumerate(raw))


def _message(item: Any, index: int) -> Message:
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where} must be an object", param="messages")
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"{where}.role must be one of {', '.join(_ROLES)}", param=f"{where}.role"
        )
    if role == "developer":
        role = "system"
    calls = _tool_calls(item.get("tool_calls"), where) if role == "assistant" else ()
    content = item.get("content")
    if content is None and (calls or (role == "assistant" and "refusal" in item)):
        content = ""  # an assistant turn that only called tools (or refused) has no text
    if isinstance(content, list):
        content = _text_parts(content, where)
    if not isinstance(content, str):
        raise InvalidRequest(f"{where}.content must be a string", param=f"{where}.content")
    if role != "tool":
        return Message(role, content, calls)  # type: ignore[arg-type]  # checked against _ROLES
    call_id = item.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(
            f"{where}.tool_call_id must be the id of the call this result answers",
            param=f"{where}.tool_call_id",
        )
    return Message("tool", content, tool_call_id=call_id)


def _tool_calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequest(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    calls: list[ToolCall] = []
    for number, item in enumerate(raw):
        at = f"{where}.tool_calls[{number}]"
        if not isinstance(item, dict) or item.get("type", "function") != "function":
            raise InvalidRequest(f"{at} must be a function call object", param=at)
        call_id, function = item.get("id"), item.get("function")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest(f"{at}.id must be a non-empty string", param=f"{at}.id")
        if not isinstance(function, dict):
            raise InvalidRequest(f"{at}.function must be an object", param=f"{at}.function")
        name, arguments = function.get("name"), function.get("arguments")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(
                f"{at}.function.name must be a non-empty string", param=f"{at}.function.name"
            )
        if not isinstance(arguments, str):
            raise InvalidRequest(
                f"{at}.function.arguments must be a string of JSON",
                param=f"{at}.function.arguments",
            )
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)


def _text_parts(parts: list[Any], where: str) -> str:
    """Content parts joined in order. Only text parts can be honoured: any other kind is refused
    by name rather than silently dropped."""
    texts: list[str] = []
    for number, part in enumerate(parts):
        at = f"{where}.content[{number}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"{at} must be an object", param=at)
        kind = part.get("type")
        if kind != "text":
            raise InvalidRequest(
                f"{at}.type {kind!r} is not supported; only text parts are", param=at
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"{at}.text must be a string", param=f"{at}.text")
        texts.append(text)
    return "".join(texts)
