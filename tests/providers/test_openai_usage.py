"""OpenAI usage read the same way on every path (SDK objects, the aiohttp transport's dicts,
streamed chunks), cached input priced at the cached rate, and the output budget sent in the
field the server takes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from tests.upstream import Answer, ScriptedUpstream
from tether import (
    Capabilities,
    Client,
    ModelSettings,
    PriceSettings,
    ProviderError,
    Settings,
    Usage,
)
from tether.messages import GenerationParams, Message, ProviderCall, StreamChunk
from tether.providers.openai_compat import OpenAICompatProvider
from tether.providers.openai_usage import openai_usage

from .helpers import API_KEY

# gpt-5's list prices: cached input at a tenth of the input rate
PRICE = PriceSettings(
    input_per_million=1.25, cached_input_per_million=0.125, output_per_million=10.0
)
# What OpenAI reports for a 2,006-token prompt whose first 1,920 tokens hit the prompt cache.
CACHED_USAGE: dict[str, Any] = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "total_tokens": 2306,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0},
}
EXPECTED_USAGE = Usage(input_tokens=2006, output_tokens=300, cached_input_tokens=1920)
# prompt_tokens includes the cached tokens: 86 at the input rate, 1,920 at the cached rate
EXPECTED_COST = (86 * 1.25 + 1920 * 0.125 + 300 * 10.0) / 1e6
CALL = ProviderCall((Message("user", "hi"),), GenerationParams(max_tokens=100))


def _completion_body(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


class Upstream:
    """Answers every request with one body (SSE when asked to stream); keeps what was sent."""

    def __init__(self, usage: dict[str, Any]) -> None:
        self.usage = usage
        self.bodies: list[dict[str, Any]] = []

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        if not body.get("stream"):
            return httpx2.Response(200, json=_completion_body(body["model"], self.usage))
        head = {"id": "c-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        chunks = [
            {**head, "choices": [{"index": 0, "delta": {"content": "hello"}}]},
            {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**head, "choices": [], "usage": self.usage},
        ]
        sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, text=sse)

    def provider(self, model: str = "gpt-5", **options: Any) -> OpenAICompatProvider:
        transport = httpx2.MockTransport(self.handler)
        return OpenAICompatProvider(
            model,
            api_key=API_KEY,
            http_client=httpx2.Client(transport=transport),
            async_http_client=httpx2.AsyncClient(transport=transport),
            max_retries=0,
            **options,
        )


@pytest.fixture
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream([Answer("hello", CACHED_USAGE)])
    yield upstream
    upstream.close()


def _settings(**model: Any) -> Settings:
    return Settings(models={"gpt": ModelSettings(provider="openai", price=PRICE, **model)})


# -- the one reader ------------------------------------------------------------------------------


def test_cached_tokens_are_part_of_the_prompt_tokens() -> None:
    usage = openai_usage(CACHED_USAGE)
    assert usage == EXPECTED_USAGE
    assert usage.uncached_input_tokens == 86
    assert usage.total_tokens == 2306


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Usage()),
        ("not an object", Usage()),
        ({"prompt_tokens": 10, "completion_tokens": 2}, Usage(10, 2)),
        (
            {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": None},
            Usage(10, 2),
        ),
        # a server that says more were cached than were sent: never a negative remainder
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": 2,
                "prompt_tokens_details": {"cached_tokens": 50},
            },
            Usage(10, 2, cached_input_tokens=10),
        ),
        (
            {
                "prompt_tokens": 10,
                "completion_tokens": -1,
                "prompt_tokens_details": {"cached_tokens": "4"},
            },
            Usage(10, 0),
        ),
    ],
)
def test_missing_or_odd_fields_count_as_zero(raw: object, expected: Usage) -> None:
    assert openai_usage(raw) == expected


# -- every transport ---------------------------------------------------------------------------


async def test_sdk_path_prices_cached_tokens_at_the_cached_rate(generate: Any) -> None:
    upstream = Upstream(CACHED_USAGE)
    with Client(_settings(), providers={"gpt": upstream.provider()}) as client:
        result = await generate(client, "hi", model="gpt")
    assert result.usage == EXPECTED_USAGE
    assert result.cost_usd == pytest.approx(EXPECTED_COST)


async def test_aiohttp_path_prices_cached_tokens_at_the_cached_rate(
    scripted: ScriptedUpstream,
) -> None:
    provider = OpenAICompatProvider("gpt-5", base_url=scripted.base_url, max_retries=0)
    with Client(_settings(), providers={"gpt": provider}) as client:
        result = await client.agenerate("hi", model="gpt")
    assert len(scripted.bodies) == 1  # it went through the local upstream, not a mock
    assert result.usage == EXPECTED_USAGE
    assert result.cost_usd == pytest.approx(EXPECTED_COST)


async def test_streamed_usage_carries_cached_tokens() -> None:
    provider = Upstream(CACHED_USAGE).provider()
    chunks = [chunk async for chunk in provider.astream(CALL)]
    assert "".join(c.text for c in chunks) == "hello"
    assert chunks[-1].usage == EXPECTED_USAGE


def test_without_a_cached_price_cached_tokens_cost_the_input_price() -> None:
    price = PriceSettings(input_per_million=1.25, output_per_million=10.0)
    settings = Settings(models={"gpt": ModelSettings(provider="openai", price=price)})
    with Client(settings, providers={"gpt": Upstream(CACHED_USAGE).provider()}) as client:
        result = client.generate("hi", model="gpt")
    assert result.cost_usd == pytest.approx((2006 * 1.25 + 300 * 10.0) / 1e6)


# -- the output budget's field ------------------------------------------------------------------


@pytest.mark.parametrize("model", ["o3-mini", "gpt-5", "gpt-4o-mini"])
async def test_openai_itself_gets_max_completion_tokens(model: str) -> None:
    upstream = Upstream(CACHED_USAGE)
    provider = upstream.provider(model)  # default base_url: api.openai.com
    provider.complete(CALL)
    await provider.acomplete(CALL)
    _ = [chunk async for chunk in provider.astream(CALL)]
    for body in upstream.bodies:
        assert body["max_completion_tokens"] == 100
        assert "max_tokens" not in body


async def test_other_servers_get_max_tokens(scripted: ScriptedUpstream) -> None:
    provider = OpenAICompatProvider("llama", base_url=scripted.base_url, max_retries=0)
    await provider.acomplete(CALL)  # the aiohttp transport
    (body,) = scripted.bodies
    assert body["max_tokens"] == 100
    assert "max_completion_tokens" not in body


async def test_the_field_is_a_capability_the_settings_can_override(
    scripted: ScriptedUpstream,
) -> None:
    settings = _settings(
        base_url=scripted.base_url,
        upstream_model="o3-mini",
        max_retries=0,
        capabilities={"max_tokens_field": "max_completion_tokens"},
    )
    with Client(settings) as client:
        provider = client.provider("gpt")
        assert provider.capabilities.max_tokens_field == "max_completion_tokens"
        await client.agenerate("hi", model="gpt", max_tokens=100)
    (body,) = scripted.bodies
    assert body["max_completion_tokens"] == 100
    assert "max_tokens" not in body


def test_openai_itself_can_be_told_to_send_max_tokens() -> None:
    upstream = Upstream(CACHED_USAGE)
    capabilities = Capabilities(supports_json_schema=True, max_tokens_field="max_tokens")
    upstream.provider("gpt-4o-mini", capabilities=capabilities).complete(CALL)
    (body,) = upstream.bodies
    assert body["max_tokens"] == 100
    assert "max_completion_tokens" not in body


# -- a stream that breaks after its usage arrived ------------------------------------------------


class _BreaksAfter(httpx2.AsyncByteStream):
    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event
        raise httpx2.RemoteProtocolError("peer closed connection without sending complete body")


async def test_a_stream_cut_after_its_usage_carries_it_on_the_error() -> None:
    head = {"id": "c-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    so_far = {**CACHED_USAGE, "completion_tokens": 7}  # vLLM reports usage on every chunk
    chunk = {**head, "choices": [{"index": 0, "delta": {"content": "hel"}}], "usage": so_far}
    events = [f"data: {json.dumps(chunk)}\n\n".encode()]

    def handler(request: httpx2.Request) -> httpx2.Response:
        stream = _BreaksAfter(events)
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    provider = OpenAICompatProvider(
        "m",
        base_url="http://127.0.0.1:9/v1",
        async_http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )
    received: list[str] = []
    with pytest.raises(ProviderError) as err:
        await _read(provider.astream(CALL), received)
    assert received == ["hel"]
    assert err.value.usage == Usage(2006, 7, cached_input_tokens=1920)


async def _read(stream: AsyncIterator[StreamChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.text)
