"""OpenAI's `x-ratelimit-*` headers on every answer to a key with limits, 429s included."""

from __future__ import annotations

import openai
import pytest

from .conftest import LiveGateway


def test_headers_count_down_and_the_429_says_when_to_retry(live: LiveGateway) -> None:
    _, secret = live.gateway.keys.create("limited", rpm=2, tpm=1000)
    client = openai.OpenAI(base_url=live.v1, api_key=secret, max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    first = client.chat.completions.with_raw_response.create(model="fake", messages=messages)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    second = client.chat.completions.with_raw_response.create(model="fake", messages=messages)
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(second.headers["x-ratelimit-remaining-tokens"]) < 1000  # the first call's tokens
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="fake", messages=messages)
    headers = refused.value.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert float(headers["x-ratelimit-reset-requests"].rstrip("s")) > 0
    assert int(headers["retry-after"]) >= 1


def test_no_headers_for_a_key_without_limits(live: LiveGateway) -> None:
    client = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
    answered = client.chat.completions.with_raw_response.create(
        model="fake", messages=[{"role": "user", "content": "hi"}]
    )
    assert not any(name.startswith("x-ratelimit") for name in answered.headers)
