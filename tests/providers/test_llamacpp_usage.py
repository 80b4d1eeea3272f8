"""Tokens counted for the real local model's streams: tokens generated, not chunks sent (a
chunk may hold several tokens, the last holds none, stop-sequence tokens are never sent)."""

from __future__ import annotations

import pytest

from tether import Client
from tether.messages import GenerationParams, Message, ProviderCall, StreamChunk, Usage
from tether.providers.base import Provider

pytestmark = pytest.mark.local_model


async def _stream(provider: Provider, call: ProviderCall) -> tuple[list[StreamChunk], Usage, str]:
    chunks = [chunk async for chunk in provider.astream(call)]
    last = chunks[-1]
    assert last.usage is not None
    assert last.finish_reason is not None
    return [c for c in chunks if c.text], last.usage, last.finish_reason


def _call(prompt: str, max_tokens: int, stop: tuple[str, ...] = ()) -> ProviderCall:
    params = GenerationParams(max_tokens=max_tokens, stop=stop, seed=1)
    return ProviderCall((Message("user", prompt),), params)


@pytest.mark.parametrize(
    ("prompt", "stop"),
    [
        ("Write a haiku about the sea.", ()),
        ("用中文写一句话。", ()),  # characters that span several tokens
        ("List three fruits.", ("\n\n",)),
    ],
)
async def test_a_stream_counts_the_tokens_the_same_call_generates_unstreamed(
    local_client: Client, prompt: str, stop: tuple[str, ...]
) -> None:
    provider = local_client.provider()
    call = _call(prompt, 64, stop)
    # Once first: llama.cpp reuses the cached prompt on a repeat, and a prompt evaluated in one
    # batch or token by token can differ in the last digits, enough to flip a near-tie token.
    await provider.acomplete(call)
    whole = await provider.acomplete(call)
    pieces, usage, finish = await _stream(provider, call)
    assert "".join(p.text for p in pieces).strip() == whole.text  # the same generation
    assert finish == whole.finish_reason
    assert usage == whole.usage
    assert 0 < usage.output_tokens <= 64


async def test_stop_sequence_tokens_are_counted_though_never_sent(local_client: Client) -> None:
    pieces, usage, finish = await _stream(
        local_client.provider(), _call("Write a haiku about the sea.", 64)
    )
    assert finish == "stop"
    assert usage.output_tokens > len(pieces)


async def test_a_stream_cut_at_max_tokens_counts_exactly_max_tokens(local_client: Client) -> None:
    pieces, usage, finish = await _stream(
        local_client.provider(), _call("Write a long story about a dragon.", 20)
    )
    assert finish == "length"
    assert usage.output_tokens == 20
    assert len(pieces) <= 20
