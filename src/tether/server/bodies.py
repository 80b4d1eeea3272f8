"""Request bodies: size-limited reading, strict JSON parsing, the chat completion request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request

from tether.errors import InvalidRequest
from tether.messages import ROLES, Message

# field: (type, lowest, highest). Bounds keep values inside what every provider and the request
# log's integer columns can hold, so an absurd number is a 400 here, never an overflow later.
_PARAMS: dict[str, tuple[type, float, float]] = {
    "max_tokens": (int, 1, 2**31 - 1),
    "temperature": (float, 0.0, 2.0),
    "seed": (int, 0, 2**32 - 1),
}


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InvalidRequest(f"body over the {limit}-byte limit", status=413)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise InvalidRequest(f"body over the {limit}-byte limit", status=413)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    return data


def _string(data: dict[str, Any], field: str, *, required: bool = True) -> str | None:
    value = data.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"`{field}` must be a non-empty string", param=field)
    return value


@dataclass(frozen=True)
class ChatRequest:
    model: str | None
    messages: tuple[Message, ...]
    params: dict[str, Any]
    schema: dict[str, Any] | None  # from response_format
    schema_name: str | None
    stream: bool
    include_usage: bool


def _messages(data: dict[str, Any]) -> tuple[Message, ...]:
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("`messages` must be a non-empty array", param="messages")
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidRequest(f"messages[{index}] must be an object", param="messages")
        role, content = item.get("role"), item.get("content")
        if role == "developer":
            role = "system"
        if role not in ROLES:
            raise InvalidRequest(
                f"messages[{index}].role must be one of system, user, assistant",
                param=f"messages[{index}].role",
            )
        if isinstance(content, list):
            content = _text_parts(content, index)
        if not isinstance(content, str):
            raise InvalidRequest(
                f"messages[{index}].content must be a string", param=f"messages[{index}].content"
            )
        out.append(Message(role, content))
    return tuple(out)


def _text_parts(parts: list[Any], index: int) -> str:
    """Content parts joined in order. Only text parts can be honoured: any other kind is refused
    by name rather than silently dropped."""
    texts: list[str] = []
    for number, part in enumerate(parts):
        where = f"messages[{index}].content[{number}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        kind = part.get("type")
        if kind != "text":
            raise InvalidRequest(
                f"{where}.type {kind!r} is not supported; only text parts are", param=where
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}.text must be a string", param=f"{where}.text")
        texts.append(text)
    return "".join(texts)


def _schema(data: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    spec = data.get("response_format")
    if spec is None:
        return None, None
    if not isinstance(spec, dict):
        raise InvalidRequest("`response_format` must be an object", param="response_format")
    kind = spec.get("type")
    if kind == "text":
        return None, None
    if kind == "json_object":
        return {"type": "object"}, "json_object"
    if kind == "json_schema":
        inner = spec.get("json_schema")
        if not isinstance(inner, dict) or not isinstance(inner.get("schema"), dict):
            raise InvalidRequest(
                "`response_format.json_schema.schema` must be a JSON Schema object",
                param="response_format.json_schema.schema",
            )
        name = inner.get("name")
        return inner["schema"], name if isinstance(name, str) else None
    raise InvalidRequest(
        "`response_format.type` must be text, json_object or json_schema",
        param="response_format.type",
    )


def _params(data: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if "max_completion_tokens" in data and "max_tokens" not in data:
        data = {**data, "max_tokens": data["max_completion_tokens"]}
    for field, (kind, lowest, highest) in _PARAMS.items():
        value = data.get(field)
        if value is None:
            continue
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (kind is int and not isinstance(value, int)):
            raise InvalidRequest(f"`{field}` must be a {kind.__name__}", param=field)
        if not lowest <= value <= highest:
            raise InvalidRequest(f"`{field}` must be between {lowest} and {highest}", param=field)
        params[field] = kind(value)
    stop = data.get("stop")
    if isinstance(stop, str):
        params["stop"] = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        params["stop"] = tuple(stop)
    elif stop is not None:
        raise InvalidRequest("`stop` must be a string or an array of strings", param="stop")
    return params


def chat_request(data: dict[str, Any]) -> ChatRequest:
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("`stream` must be a boolean", param="stream")
    options = data.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    schema, schema_name = _schema(data)
    return ChatRequest(
        model=_string(data, "model", required=False),
        messages=_messages(data),
        params=_params(data),
        schema=schema,
        schema_name=schema_name,
        stream=stream,
        include_usage=include_usage,
    )
