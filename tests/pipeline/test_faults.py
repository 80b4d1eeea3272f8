"""Faults injected by a local upstream: 500s, 429s with Retry-After, hangs, reset connections.

With a fallback configured nearly every request succeeds, no model is tried more than
1 + max_retries times, no request outlives its deadline, and a model whose calls keep failing
has its circuit opened (its fallback answers at once) and closed again once it recovers."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pipeline.upstreams import Reply, RuleUpstream
from tether import Client, ModelSettings, Settings
from tether.errors import DeadlineExceeded, ProviderError
from tether.settings import CallSettings

SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
GOOD = Reply(content=json.dumps({"ok": True}))
RETRIES = 2
DEADLINE_S = 4.0


def _flaky(seed: int) -> Callable[[dict[str, Any]], Reply]:
    """30% 500, 10% 429 (Retry-After 0), 10% hang past the attempt timeout, 10% reset."""
    chance = random.Random(seed)
    lock = threading.Lock()

    def rule(body: dict[str, Any]) -> Reply:
        with lock:
            roll = chance.random()
        if roll < 0.3:
            return Reply(500, '{"error": {"message": "boom"}}')
        if roll < 0.4:
            return Reply(429, '{"error": {"message": "slow down"}}', headers={"retry-after": "0"})
        if roll < 0.5:
            return Reply(delay_s=5.0)
        if roll < 0.6:
            return Reply(reset=True)
        return GOOD

    return rule


def _settings(tmp_path: Path, upstream: RuleUpstream, **calls: Any) -> Settings:
    def model(upstream_model: str, **extra: Any) -> ModelSettings:
        return ModelSettings(provider="openai", base_url=upstream.base_url, api_key_env="K",
                             upstream_model=upstream_model, **extra)  # fmt: skip

    return Settings(
        data_dir=tmp_path / "data",
        default_model="flaky",
        calls=CallSettings(retry_base_s=0.001, retry_cap_s=0.02, deadline_s=DEADLINE_S, **calls),
        models={
            "flaky": model("flaky-up", max_retries=RETRIES, timeout_s=0.3, fallbacks=["backup"]),
            "backup": model("backup-up", max_retries=RETRIES, timeout_s=2.0),
        },
    ).with_secrets({"K": "sk-test"})


@pytest.fixture
def upstream() -> Iterator[RuleUpstream]:
    server = RuleUpstream({"flaky-up": _flaky(7), "backup-up": lambda body: GOOD})
    yield server
    server.close()


def test_faults_with_a_fallback_leave_nearly_every_request_answered(
    tmp_path: Path, upstream: RuleUpstream
) -> None:
    # A circuit that never opens here: this test is about retries and fallbacks.
    settings = _settings(tmp_path, upstream, circuit_failures=10_000)

    async def one(client: Client, gate: asyncio.Semaphore) -> tuple[bool, list[str], float]:
        async with gate:
            started = time.perf_counter()
            try:
                result = await client.agenerate("ping", contract=SCHEMA, max_tokens=8)
            except ProviderError as exc:
                return False, [a.model for a in exc.attempts], time.perf_counter() - started
            return True, [a.model for a in result.attempts], time.perf_counter() - started

    async def run_all() -> list[tuple[bool, list[str], float]]:
        gate = asyncio.Semaphore(16)
        with Client(settings) as client:
            return await asyncio.gather(*(one(client, gate) for _ in range(400)))

    outcomes = asyncio.run(run_all())
    answered = sum(ok for ok, _, _ in outcomes)
    assert answered / len(outcomes) >= 0.995, answered
    for _, models, elapsed in outcomes:
        tries = {m: len(list(g)) for m, g in itertools.groupby(models)}
        assert all(n <= 1 + RETRIES for n in tries.values()), models
        assert elapsed <= DEADLINE_S + 0.5  # the deadline, plus the event loop's slack
    fell_back = sum("backup" in models for _, models, _ in outcomes)
    assert fell_back > 0  # with 40% of flaky's calls failing, some requests needed it


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    answers = iter([Reply(429, '{"error": {"message": "later"}}', headers={"retry-after": "1"})])
    server = RuleUpstream({"flaky-up": lambda body: next(answers, GOOD)})
    try:
        settings = _settings(tmp_path, server)
        with Client(settings) as client:
            started = time.perf_counter()
            result = client.generate("ping", contract=SCHEMA, max_tokens=8)
            elapsed = time.perf_counter() - started
    finally:
        server.close()
    assert [a.model for a in result.attempts] == ["flaky", "flaky"]
    assert elapsed >= 1.0  # the backoff alone is milliseconds here


def test_the_deadline_bounds_every_attempt_together(tmp_path: Path) -> None:
    server = RuleUpstream({"flaky-up": lambda body: Reply(delay_s=30.0),
                           "backup-up": lambda body: Reply(delay_s=30.0)})  # fmt: skip
    try:
        settings = _settings(tmp_path, server)
        with Client(settings) as client:
            started = time.perf_counter()
            with pytest.raises(DeadlineExceeded) as failed:
                client.generate("ping", contract=SCHEMA, max_tokens=8, timeout_s=1.0)
            elapsed = time.perf_counter() - started
    finally:
        server.close()
    # Ended by the 1 s deadline, not by the 30 s hangs (slack for a busy machine).
    assert elapsed < 3.0
    assert failed.value.attempts  # every attempt made is on the error (and billed)


def test_the_circuit_opens_and_closes(tmp_path: Path) -> None:
    healthy = threading.Event()
    server = RuleUpstream(
        {
            "flaky-up": lambda body: GOOD if healthy.is_set() else Reply(500, "{}"),
            "backup-up": lambda body: GOOD,
        }
    )
    try:
        settings = _settings(tmp_path, server, circuit_failures=3, circuit_cooldown_s=0.5)
        settings = settings.model_copy(
            update={
                "models": {
                    **settings.models,
                    "flaky": settings.models["flaky"].model_copy(update={"max_retries": 0}),
                }
            }
        )
        with Client(settings) as client:
            for _ in range(3):  # three failures in a row open the circuit
                assert client.generate("ping", contract=SCHEMA).attempts[-1].model == "backup"
            assert server.calls("flaky-up") == 3
            skipped = client.generate("ping", contract=SCHEMA)
            assert [a.model for a in skipped.attempts] == ["backup"]  # not even tried
            assert server.calls("flaky-up") == 3
            healthy.set()
            time.sleep(0.6)  # past the cooldown: one probe goes through, and succeeds
            probe = client.generate("ping", contract=SCHEMA)
            assert [a.model for a in probe.attempts] == ["flaky"]
            again = client.generate("ping", contract=SCHEMA)
            assert [a.model for a in again.attempts] == ["flaky"]  # closed again
    finally:
        server.close()


def test_a_stream_cut_mid_way_ends_with_an_error_event_and_an_incomplete_row(
    tmp_path: Path,
) -> None:
    import openai
    from sqlalchemy import select

    from tests.server.conftest import upstream_gateway
    from tests.upstream import CutStream, ScriptedUpstream
    from tether.store.tables import requests

    head = {"index": 0, "finish_reason": None}
    chunks = [{"choices": [{**head, "delta": {"content": word}}]} for word in ("Lyon ", "is ")]
    scripted = ScriptedUpstream([CutStream(chunks)])  # no usage before the cut
    try:
        with upstream_gateway(tmp_path, scripted) as live:
            sdk = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
            stream = sdk.chat.completions.create(
                model="up", messages=[{"role": "user", "content": "Where?"}], stream=True
            )
            received: list[str] = []
            with pytest.raises(openai.APIError, match="connection failed"):
                _read(stream, received)
            assert "".join(received) == "Lyon is "
            assert live.gateway.log.flush(5)
            with live.gateway.engine.connect() as conn:
                (row,) = conn.execute(select(requests)).all()
    finally:
        scripted.close()
    assert row.status == 502
    assert row.response == "Lyon is "  # what the caller got
    assert row.output_tokens == 2  # the partial output, counted where the upstream did not
    (attempt,) = json.loads(row.attempts)
    assert attempt["finish_reason"] == "error"


def _read(stream: Any, received: list[str]) -> None:
    for chunk in stream:
        received.extend(choice.delta.content or "" for choice in chunk.choices)
