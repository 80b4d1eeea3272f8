"""Anthropic's prompt-cache usage: reads and writes are reported beside `input_tokens`, not in
it; tether counts the whole prompt and prices each part at its own rate."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tether import Client, ModelSettings, PriceSettings, Settings, Usage
from tether.providers.anthropic import AnthropicProvider

from .helpers import API_KEY, Generate

# Claude Haiku 4.5's list prices: 5-minute cache writes at 1.25x input, reads at 0.1x
PRICE = PriceSettings(
    input_per_million=1.0,
    output_per_million=5.0,
    cache_write_per_million=1.25,
    cached_input_per_million=0.10,
)


def _message(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


# The first call writes a 2,048-token system prompt to the cache, the second reads it back.
WRITE = {
    "input_tokens": 50,
    "cache_creation_input_tokens": 2048,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
    "output_tokens": 20,
}
READ = {
    "input_tokens": 60,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 2048,
    "output_tokens": 25,
}


def _client(*usages: dict[str, Any], price: PriceSettings = PRICE) -> Client:
    answers = iter(usages)

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert json.loads(request.content)["max_tokens"] == 512  # Anthropic keeps max_tokens
        return httpx2.Response(200, json=_message(next(answers)))

    transport = httpx2.MockTransport(handler)
    provider = AnthropicProvider(
        "claude-haiku-4-5",
        api_key=API_KEY,
        http_client=httpx2.Client(transport=transport),
        async_http_client=httpx2.AsyncClient(transport=transport),
        max_retries=0,
    )
    settings = Settings(models={"claude": ModelSettings(provider="anthropic", price=price)})
    return Client(settings, providers={"claude": provider})


async def test_cache_writes_and_reads_are_counted_into_the_input(generate: Generate) -> None:
    with _client(WRITE, READ) as client:
        first = await generate(client, "hi", model="claude")
        second = await generate(client, "hi", model="claude")
    assert first.usage == Usage(2098, 20, cached_input_tokens=0, cache_write_tokens=2048)
    assert second.usage == Usage(2108, 25, cached_input_tokens=2048, cache_write_tokens=0)
    assert first.cost_usd == pytest.approx((50 * 1.0 + 2048 * 1.25 + 20 * 5.0) / 1e6)
    assert second.cost_usd == pytest.approx((60 * 1.0 + 2048 * 0.10 + 25 * 5.0) / 1e6)


def test_absent_cache_fields_count_as_none() -> None:
    with _client({"input_tokens": 40, "output_tokens": 5}) as client:
        result = client.generate("hi", model="claude")
    assert result.usage == Usage(40, 5)
    assert result.cost_usd == pytest.approx((40 * 1.0 + 5 * 5.0) / 1e6)


def test_without_cache_prices_every_input_token_costs_the_input_price() -> None:
    price = PriceSettings(input_per_million=1.0, output_per_million=5.0)
    with _client(WRITE, price=price) as client:
        result = client.generate("hi", model="claude")
    assert result.cost_usd == pytest.approx((2098 * 1.0 + 20 * 5.0) / 1e6)
