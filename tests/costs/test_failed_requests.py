"""Money is never lost on the way: a request that fails after billed upstream calls (a repair
that then times out, is refused, or overflows the context; a stream cut mid-way) is logged and
charged for exactly what the upstream billed, through the gateway and the official SDK."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from sqlalchemy import select

from tests.server.conftest import LiveGateway, gateway_settings, live_gateway
from tests.upstream import Answer, CutStream, Fail, Hang, ScriptedUpstream, Step
from tether import ModelSettings, PriceSettings
from tether.costs.limits.base import Budget
from tether.store.tables import requests

# USD per million tokens; cached input is discounted, as OpenAI bills it
INPUT, CACHED, OUTPUT = 2.0, 0.5, 8.0
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}
MISSING_COUNTRY = '{"city": "Lyon"}'
NOT_JSON = "Lyon, France"


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def billed(*usages: dict[str, Any]) -> tuple[int, int, float]:
    """Input tokens, output tokens and dollars the upstream billed for `usages`."""
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    cached = sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    dollars = ((prompt - cached) * INPUT + cached * CACHED + completion * OUTPUT) / 1e6
    return prompt, completion, dollars


class Setup:
    def __init__(self, live: LiveGateway, upstream: ScriptedUpstream, script: list[Step]) -> None:
        self.live = live
        self.upstream = upstream
        self.answers = [step for step in script if isinstance(step, Answer)]
        # A key with a budget: the limit store keeps its spend, which must match the row.
        self.key, self.secret = live.gateway.keys.create("budgeted", budget_usd=100.0)

    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.live.v1, api_key=self.secret, max_retries=0)

    def spent(self) -> float:
        budget = Budget.for_key(self.key.id, 100.0, "total")
        return asyncio.run(self.live.gateway.runtime.limits.spent(budget))

    def row(self) -> Any:
        assert self.live.gateway.log.flush()
        with self.live.gateway.engine.connect() as conn:
            (found,) = conn.execute(select(requests))
        return found


def _gateway(tmp_path: Path, script: list[Step]) -> Iterator[Setup]:
    upstream = ScriptedUpstream(script)
    settings = gateway_settings(tmp_path)
    up = ModelSettings(
        provider="openai",
        base_url=upstream.base_url,
        upstream_model="gpt-test",
        timeout_s=0.5,
        max_retries=0,
        price=PriceSettings(
            input_per_million=INPUT, cached_input_per_million=CACHED, output_per_million=OUTPUT
        ),
    )
    settings = settings.model_copy(update={"models": {**settings.models, "up": up}})
    try:
        with live_gateway(settings) as live:
            yield Setup(live, upstream, script)
    finally:
        upstream.close()


@pytest.fixture
def scripted(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    yield from _gateway(tmp_path, request.param)


FIRST = usage(1200, 40, cached=1024)
SECOND = usage(1300, 35, cached=1152)
CONTEXT_ERROR = {
    "message": "This model's maximum context length is 8192 tokens.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded",
}
BAD_PARAMETER = {
    "message": "Invalid value for 'temperature'.",
    "type": "invalid_request_error",
    "param": "temperature",
    "code": None,
}

FAILURES = {
    "two repairs then a timeout": (
        [Answer(NOT_JSON, FIRST), Answer(MISSING_COUNTRY, SECOND), Hang()],
        504,
        "timed out",
    ),
    "a repair then a 400": (
        [Answer(MISSING_COUNTRY, FIRST), Fail(400, BAD_PARAMETER)],
        502,
        "Invalid value",
    ),
    "a repair then the context window": (
        [Answer(MISSING_COUNTRY, FIRST), Fail(400, CONTEXT_ERROR)],
        None,  # whichever status the gateway maps a context overflow to
        "maximum context length",
    ),
}


@pytest.mark.parametrize(
    ("scripted", "status", "reason"),
    [pytest.param(*case, id=name) for name, case in FAILURES.items()],
    indirect=["scripted"],
)
def test_a_failed_repair_is_charged_every_billed_attempt(
    scripted: Setup, status: int | None, reason: str
) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        scripted.sdk().chat.completions.create(
            model="up",
            messages=[{"role": "user", "content": "Where is Lyon?"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city", "schema": CITY_SCHEMA},
            },
        )
    if status is not None:
        assert err.value.status_code == status
    paid = [answer.usage for answer in scripted.answers]
    assert len(scripted.upstream.bodies) == len(paid) + 1  # the repairs were sent

    prompt, completion, dollars = billed(*paid)
    row = scripted.row()
    assert row.status == err.value.status_code
    assert (row.input_tokens, row.output_tokens) == (prompt, completion)
    assert row.cost_usd == pytest.approx(dollars)
    assert scripted.spent() == pytest.approx(dollars)

    attempts = json.loads(row.attempts)
    assert len(attempts) == len(paid) + 1
    assert [a["raw"] for a in attempts[:-1]] == [answer.content for answer in scripted.answers]
    assert [a["cached_input_tokens"] for a in attempts[:-1]] == [
        u["prompt_tokens_details"]["cached_tokens"] for u in paid
    ]
    failed = attempts[-1]
    assert (failed["input_tokens"], failed["output_tokens"], failed["cost_usd"]) == (0, 0, 0)
    assert reason in failed["errors"][0]


def _delta(text: str, so_far: dict[str, Any]) -> dict[str, Any]:
    # vLLM's continuous usage: every chunk carries the usage so far
    return {
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
        "usage": so_far,
    }


STREAMED = [
    _delta("Lyon", usage(900, 1, cached=768)),
    _delta(" is", usage(900, 2, cached=768)),
    _delta(" in", usage(900, 3, cached=768)),
]


@pytest.mark.parametrize("scripted", [[CutStream(STREAMED)]], indirect=True)
def test_a_cut_stream_is_charged_what_the_upstream_reported(scripted: Setup) -> None:
    stream = scripted.sdk().chat.completions.create(
        model="up", messages=[{"role": "user", "content": "Where is Lyon?"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError):
        _read(stream, received)
    assert "".join(received) == "Lyon is in"

    prompt, completion, dollars = billed(STREAMED[-1]["usage"])
    row = scripted.row()
    assert row.stream is True
    assert row.response == "Lyon is in"
    assert (row.input_tokens, row.output_tokens) == (prompt, completion)
    assert row.cost_usd == pytest.approx(dollars)
    assert scripted.spent() == pytest.approx(dollars)
    (attempt,) = json.loads(row.attempts)
    assert attempt["raw"] == "Lyon is in"
    assert attempt["cached_input_tokens"] == 768


def _read(stream: Iterable[ChatCompletionChunk], into: list[str]) -> None:
    for chunk in stream:
        into.extend(choice.delta.content or "" for choice in chunk.choices)
