"""Request bodies: size-limited reading, strict JSON parsing, the chat completion request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request

from tether.errors import InvalidRequest
from tether.messages import Message, ToolSpec
from tether.server.chat_messages import chat_messages
from tether.server.chat_tools import chat_tools

# field: (type, lowest, highest). Bounds keep values inside what every provider and the request
# log's integer columns can hold, so an absurd number is a 400 here, never an overflow later.
_PARAMS: dict[str, tuple[type, float, float]] = {
    "max_tokens": (int, 1, 2**31 - 1),
    "temperature": (float, 0.0, 2.0),
    "seed": (int, 0, 2**32 - 1),
    "top_p": (float, 0.0, 1.0),
    "presence_penalty": (float, -2.0, 2.0),
    "frequency_penalty": (float, -2.0, 2.0),
    "top_logprobs": (int, 0, 20),
}
MAX_CHOICES = 16  # `n`: each choice is a whole completion (and its repairs)
_BIAS_LIMIT = 100.0
# JSON mode: any JSON object (providers with a JSON mode use it for exactly this schema).
JSON_OBJECT_SCHEMA = {"type": "object"}


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
    tools: ToolSpec | None = None
    n: int = 1


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
        return dict(JSON_OBJECT_SCHEMA), "json_object"
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
    logprobs = data.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise InvalidRequest("`logprobs` must be a boolean", param="logprobs")
    if logprobs:
        params["logprobs"] = True
    if "top_logprobs" in params and not logprobs:
        raise InvalidRequest("`top_logprobs` needs `logprobs: true`", param="top_logprobs")
    bias = _logit_bias(data.get("logit_bias"))
    if bias:
        params["logit_bias"] = bias
    stop = data.get("stop")
    if isinstance(stop, str):
        params["stop"] = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        params["stop"] = tuple(stop)
    elif stop is not None:
        raise InvalidRequest("`stop` must be a string or an array of strings", param="stop")
    return params


def _logit_bias(raw: Any) -> tuple[tuple[int, float], ...]:
    """OpenAI's map of token id (as a string) to a bias in [-100, 100]."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise InvalidRequest("`logit_bias` must map token ids to numbers", param="logit_bias")
    out: list[tuple[int, float]] = []
    for key, value in raw.items():
        if not key.isdigit() or len(key) > 10:
            raise InvalidRequest(f"`logit_bias` key {key!r} is not a token id", param="logit_bias")
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not -_BIAS_LIMIT <= value <= _BIAS_LIMIT:
            raise InvalidRequest(
                f"`logit_bias[{key}]` must be a number between -100 and 100", param="logit_bias"
            )
        out.append((int(key), float(value)))
    return tuple(out)


def _choices(data: dict[str, Any]) -> int:
    n = data.get("n")
    if n is None:
        return 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_CHOICES:
        raise InvalidRequest(f"`n` must be an integer between 1 and {MAX_CHOICES}", param="n")
    return n


def chat_request(data: dict[str, Any]) -> ChatRequest:
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("`stream` must be a boolean", param="stream")
    options = data.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    schema, schema_name = _schema(data)
    return ChatRequest(
        model=_string(data, "model", required=False),
        messages=chat_messages(data),
        params=_params(data),
        schema=schema,
        schema_name=schema_name,
        stream=stream,
        include_usage=include_usage,
        tools=chat_tools(data),
        n=_choices(data),
    )
