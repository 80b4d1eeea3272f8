"""Chat completion answers in OpenAI's shape: whole bodies and the SSE chunks of a validated
result (text, tool-call deltas, logprobs), for one choice or `n` of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from tether.messages import TokenLogprob, Usage
from tether.result import Result

# Tool-call arguments stream in fragments of this many characters, as OpenAI sends them.
ARGUMENT_FRAGMENT = 24


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def finish_reason(result: Result[Any]) -> str:
    if result.tool_calls:
        return "tool_calls"
    return result.attempts[-1].finish_reason if result.attempts else "stop"  # a rule's answer


def message_body(result: Result[Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": result.raw if result.raw or not result.tool_calls else None,
    }
    if result.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in result.tool_calls
        ]
    return message


def logprobs_body(logprobs: Sequence[TokenLogprob] | None) -> dict[str, Any] | None:
    if logprobs is None:
        return None
    return {"content": [_token(t, top=True) for t in logprobs], "refusal": None}


def _token(entry: TokenLogprob, *, top: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": entry.token,
        "logprob": entry.logprob,
        "bytes": list(entry.bytes),
    }
    if top:
        body["top_logprobs"] = [_token(t, top=False) for t in entry.top]
    return body


def choices_body(results: Sequence[Result[Any]]) -> list[dict[str, Any]]:
    return [
        {
            "index": index,
            "message": message_body(result),
            "finish_reason": finish_reason(result),
            "logprobs": logprobs_body(result.logprobs),
        }
        for index, result in enumerate(results)
    ]


def result_deltas(result: Result[Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(delta, logprobs) pairs for one validated choice, after its role delta: the text, then
    each call (its index, id, type and name with empty arguments) and its argument fragments."""
    if result.raw:
        yield {"content": result.raw}, logprobs_body(result.logprobs)
    for index, call in enumerate(result.tool_calls):
        head = {"index": index, "id": call.id, "type": "function"}
        yield {"tool_calls": [{**head, "function": {"name": call.name, "arguments": ""}}]}, None
        text = call.arguments
        for start in range(0, len(text), ARGUMENT_FRAGMENT):
            piece = text[start : start + ARGUMENT_FRAGMENT]
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None
