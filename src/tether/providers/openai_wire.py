"""OpenAI's chat completions wire format, both ways, for every path that speaks it (the SDK,
the aiohttp transport): the messages, tools and sampling fields of a request, and the one
parser of an answer (SDK objects are dumped to the same JSON first), so the paths cannot
drift."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tether.errors import ProviderError
from tether.messages import (
    Completion,
    Message,
    ProviderCall,
    TokenLogprob,
    ToolCall,
    ToolSpec,
    Usage,
)
from tether.providers.openai_usage import openai_usage
from tether.tools import new_call_id


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["content"] = message.content or None
            item["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in message.tool_calls
            ]
        if message.tool_call_id is not None:
            item["tool_call_id"] = message.tool_call_id
        out.append(item)
    return out


def tool_fields(tools: ToolSpec) -> dict[str, Any]:
    declared = []
    for tool in tools.tools:
        function: dict[str, Any] = {"name": tool.name, "parameters": dict(tool.parameters)}
        if tool.description is not None:
            function["description"] = tool.description
        if tool.strict:
            function["strict"] = True
        declared.append({"type": "function", "function": function})
    choice: Any = tools.choice
    if tools.function is not None:
        choice = {"type": "function", "function": {"name": tools.function}}
    fields: dict[str, Any] = {"tools": declared, "tool_choice": choice}
    if not tools.parallel:
        fields["parallel_tool_calls"] = False
    return fields


def request_fields(call: ProviderCall) -> dict[str, Any]:
    """The tool and optional sampling fields of a request (only those set)."""
    params = call.params
    fields: dict[str, Any] = tool_fields(call.tools) if call.tools is not None else {}
    for name in ("top_p", "presence_penalty", "frequency_penalty", "top_logprobs"):
        value = getattr(params, name)
        if value is not None:
            fields[name] = value
    if params.logit_bias:
        fields["logit_bias"] = {str(token): bias for token, bias in params.logit_bias}
    if params.logprobs:
        fields["logprobs"] = True
    if call.n > 1:
        fields["n"] = call.n
    return fields


def parse_completion(
    data: Mapping[str, Any], *, provider: str, model: str, text: Callable[[str], str]
) -> Completion:
    """A Completion from a chat completion's JSON (the aiohttp path's, or the SDK's object
    dumped), each further choice an alternative; `text` finishes a choice's text (a schema
    rewritten for the server is restored). Anything else is a ProviderError."""
    try:
        choices = sorted(data["choices"], key=lambda c: c.get("index") or 0)
        first, *others = (_choice(c, text, provider, model, data) for c in choices)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise ProviderError(
            "the server's answer is not a chat completion", provider=provider, model=model
        ) from None
    usage = openai_usage(data.get("usage"))  # the whole call's: it is billed once
    return replace(first, usage=usage, alternatives=tuple(others))


def _choice(
    choice: Mapping[str, Any],
    text: Callable[[str], str],
    provider: str,
    model: str,
    data: Mapping[str, Any],
) -> Completion:
    message = choice["message"]
    return Completion(
        text=text(message.get("content") or message.get("refusal") or ""),
        usage=Usage(),
        model=data.get("model") or model,
        provider=provider,
        finish_reason=choice.get("finish_reason") or "stop",
        tool_calls=parse_tool_calls(message.get("tool_calls")),
        logprobs=parse_logprobs(choice.get("logprobs")),
    )


def parse_tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    """A message's `tool_calls`; a malformed one raises (KeyError, TypeError)."""
    if not raw:
        return ()
    calls = []
    for item in raw:
        function = item["function"]
        arguments = function.get("arguments")
        calls.append(
            ToolCall(
                id=item.get("id") or new_call_id(),
                name=str(function["name"]),
                arguments=arguments if isinstance(arguments, str) else "",
            )
        )
    return tuple(calls)


def parse_logprobs(raw: Any) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(raw, Mapping) or raw.get("content") is None:
        return None
    return tuple(_token(entry) for entry in raw["content"])


def _token(entry: Mapping[str, Any]) -> TokenLogprob:
    return TokenLogprob(
        token=str(entry["token"]),
        logprob=float(entry["logprob"]),
        bytes=tuple(entry.get("bytes") or ()),
        top=tuple(_token(t) for t in entry.get("top_logprobs") or ()),
    )
