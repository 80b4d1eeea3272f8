"""Budgets and rate limits held by several `tether serve` processes at once: separate gateway
processes sharing one PostgreSQL database (keys and the request log) and one limit store
(Redis, or the database itself) receive a burst of concurrent requests for the same key and
together admit no more than the key allows.

The upstream runs in this process and answers every call with fixed usage, so each request
costs a known amount: the message below is 16 characters (no exact tokenizer for the
upstream model: admit estimates 16 // 2 + 1 = 9 input tokens), max_tokens is 1, and the
upstream reports 9 + 1 tokens; at $1000 per million tokens each way one request's maximum and
its actual cost are both $0.01. With max_tokens = 11 the maximum is $0.02 while the cost stays
$0.01: the stores hold twice what is spent until each request settles."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from tests.conftest import REDIS_URL, fresh_postgres
from tests.pipeline.upstreams import Reply, RuleUpstream
from tests.server.conftest import ADMIN_TOKEN, free_port
from tether.costs.limits import Budget, LimitStore
from tether.costs.limits.database import DatabaseLimitStore
from tether.costs.limits.redis import RedisLimitStore
from tether.server.keys import KeyStore
from tether.store.engine import open_database

ROOT = Path(__file__).resolve().parents[2]
MODEL = "metered"
CONTENT = "0123456789abcdef"  # 16 characters: 9 input tokens by admit's estimate
USAGE = (9, 1)  # what the upstream reports: prompt, completion tokens
MAX_TOKENS = 1
PRICE_PER_MILLION = 1000.0
ONE_REQUEST_USD = (USAGE[0] + USAGE[1]) * PRICE_PER_MILLION / 1_000_000  # $0.01
HELD_TWICE_MAX_TOKENS = 11  # (9 + 11) tokens: a $0.02 maximum for a $0.01 request


def chat(max_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": CONTENT}],
        "max_tokens": max_tokens,
    }


def maximum_usd(max_tokens: int) -> float:
    """What admit holds for one request of `chat(max_tokens)`."""
    return (len(CONTENT) // 2 + 1 + max_tokens) * PRICE_PER_MILLION / 1_000_000


RATELIMIT_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
)


@pytest.fixture(scope="module")
def metered() -> Iterator[RuleUpstream]:
    server = RuleUpstream({MODEL: lambda body: Reply(content="ok", usage=USAGE)})
    yield server
    server.close()


@dataclass
class Answer:
    status: int
    headers: httpx2.Headers
    body: dict[str, Any]


def _config(
    tmp: Path, database_url: str, upstream: RuleUpstream, limits: dict[str, str], extra: str = ""
) -> Path:
    tmp.mkdir(parents=True)
    limit_lines = "\n".join(f'{name} = "{value}"' for name, value in limits.items())
    config = tmp / "tether.toml"
    config.write_text(
        f"""
default_model = "{MODEL}"
data_dir = "{tmp / "data"}"
cache_dir = "{tmp / "cache"}"
database_url = "{database_url}"

[server]
admin_token = "{ADMIN_TOKEN}"

[limits]
{limit_lines}

[models.{MODEL}]
provider = "openai"
base_url = "{upstream.base_url}"
upstream_model = "{MODEL}"
max_retries = 0
price = {{ input_per_million = {PRICE_PER_MILLION}, output_per_million = {PRICE_PER_MILLION} }}
{extra}
"""
    )
    return config


@contextmanager
def gateways(
    tmp_path: Path,
    count: int,
    database_url: str,
    upstream: RuleUpstream,
    limits: dict[str, str],
    extra: str = "",
) -> Iterator[list[str]]:
    """`count` `tether serve` processes, each with its own data directory, all on
    `database_url` and the limit store `limits` describes (plus the TOML in `extra`); yields
    their base URLs once every one answers /healthz."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for n in range(count):
            config = _config(tmp_path / f"gateway{n}", database_url, upstream, limits, extra)
            port = free_port()
            log = tmp_path / f"gateway{n}.log"
            with log.open("wb") as out:
                command = [sys.executable, "-m", "tether", "serve", "--config", str(config)]
                process = subprocess.Popen(
                    [*command, "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, f"http://127.0.0.1:{port}", log))
        deadline = time.monotonic() + 60
        for process, url, log in started:
            while True:
                if process.poll() is not None:
                    pytest.fail(f"a gateway exited ({process.returncode}): {log.read_text()}")
                try:
                    if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"a gateway did not start: {log.read_text()}")
                time.sleep(0.1)
        yield [url for _, url, _ in started]
    finally:
        for process, _, _ in started:
            if process.poll() is None:
                process.terminate()
        for process, _, _ in started:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


async def _fire(
    urls: list[str], per_gateway: int, secret: str, body: dict[str, Any] | None = None
) -> list[Answer]:
    """`per_gateway` chat requests to each gateway, all in flight at once."""
    body = body or chat()
    headers = {"authorization": f"Bearer {secret}"}
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    start = asyncio.Event()

    async def one(client: httpx2.AsyncClient) -> Answer:
        await start.wait()
        response = await client.post("/v1/chat/completions", json=body, headers=headers)
        return Answer(response.status_code, response.headers, response.json())

    clients = [httpx2.AsyncClient(base_url=url, timeout=60, limits=limits) for url in urls]
    try:
        tasks = [asyncio.create_task(one(client)) for client in clients for _ in range(per_gateway)]
        await asyncio.sleep(0.05)  # every task is waiting on the start
        start.set()
        return await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.aclose()


def _logged(database_url: str, key_id: str, expected: int) -> list[tuple[int, float]]:
    """The request log's (status, cost) rows for `key_id`, once all `expected` have landed."""
    engine = sa.create_engine(database_url)
    query = sa.text("SELECT status, cost_usd FROM requests WHERE key_id = :key")
    try:
        deadline = time.monotonic() + 15
        while True:
            with engine.connect() as conn:
                rows = [(int(s), float(c)) for s, c in conn.execute(query, {"key": key_id})]
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)
    finally:
        engine.dispose()


async def _store_spent(store: LimitStore, budget: Budget) -> float:
    try:
        return await store.spent(budget)
    finally:
        await store.close()


# -- (1) one $1 budget, two gateways, 200 concurrent requests -------------------------------


def _check_budget(
    answers: list[Answer], rows: list[tuple[int, float]], held: float, maximum: float
) -> tuple[int, float]:
    """Everything one burst against a fresh $1 key budget must show; returns what was admitted
    and what it cost."""
    assert {a.status for a in answers} <= {200, 429}, [
        a.body for a in answers if a.status not in (200, 429)
    ]
    admitted = [a for a in answers if a.status == 200]
    spend = sum(cost for status, cost in rows if status == 200)
    # The stores may overshoot a budget by one request's maximum, never more.
    assert spend <= 1.0 + maximum + 1e-9, (len(admitted), spend)
    assert held <= 1.0 + maximum + 1e-9, (len(admitted), held)
    # Every request, admitted or refused, has its row; the rows agree with the answers.
    assert len(rows) == len(answers)
    assert sorted(status for status, _ in rows) == sorted(a.status for a in answers)
    assert all(cost == pytest.approx(ONE_REQUEST_USD) for status, cost in rows if status == 200)
    assert all(cost == 0 for status, cost in rows if status != 200)
    # Each admitted request was settled to what it cost: nothing is left held.
    assert held == pytest.approx(spend)
    for answer in answers:
        if answer.status == 429:
            assert answer.body["error"]["code"] == "budget_exhausted", answer.body
    return len(admitted), spend


@pytest.mark.parametrize("store", ["redis", "database"])
async def test_two_gateways_hold_one_budget(
    store: str, tmp_path: Path, metered: RuleUpstream, redis_prefix: str
) -> None:
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres())
        engine = open_database(database_url)  # migrated once, before the gateways start
        keys = KeyStore(engine)
        exact, exact_secret = keys.create("exact", budget_usd=1.0, budget_period="total")
        twice, twice_secret = keys.create("held-twice", budget_usd=1.0, budget_period="total")
        engine.dispose()
        limits = (
            {"store": "redis", "redis_url": REDIS_URL, "key_prefix": redis_prefix}
            if store == "redis"
            else {"store": "database"}
        )
        urls = stack.enter_context(gateways(tmp_path, 2, database_url, metered, limits))

        def opened() -> LimitStore:
            if store == "redis":
                return RedisLimitStore.open(REDIS_URL, key_prefix=redis_prefix)
            return DatabaseLimitStore.open(database_url)

        # The maximum is what each request costs: 100 fit in $1 exactly.
        calls_before = metered.calls(MODEL)
        began = time.monotonic()
        answers = await _fire(urls, 100, exact_secret)
        took = time.monotonic() - began
        upstream_calls = metered.calls(MODEL) - calls_before
        rows = _logged(database_url, exact.id, len(answers))
        held = await _store_spent(opened(), Budget.for_key(exact.id, 1.0, "total"))
        admitted, spend = _check_budget(answers, rows, held, maximum_usd(MAX_TOKENS))
        print(
            f"\n{store}, maximum = cost = $0.01: {admitted} of {len(answers)} admitted, "
            f"logged spend ${spend:.4f}, store ${held:.4f}, {took:.2f}s"
        )
        assert 100 <= admitted <= 101
        # What reached the upstream is what was admitted: no refused request was called.
        assert upstream_calls == admitted

        # The maximum is twice the cost: at least 50 fit while every hold is at its maximum,
        # and settling gives the rest back, so later arrivals may fit too.
        body = chat(HELD_TWICE_MAX_TOKENS)
        began = time.monotonic()
        answers = await _fire(urls, 100, twice_secret, body)
        took = time.monotonic() - began
        rows = _logged(database_url, twice.id, len(answers))
        held = await _store_spent(opened(), Budget.for_key(twice.id, 1.0, "total"))
        admitted, spend = _check_budget(answers, rows, held, maximum_usd(HELD_TWICE_MAX_TOKENS))
        print(
            f"{store}, maximum $0.02, cost $0.01: {admitted} of {len(answers)} admitted, "
            f"logged spend ${spend:.4f}, store ${held:.4f}, {took:.2f}s"
        )
        assert admitted >= 50


# -- (2) one rate limit, three gateways on Redis --------------------------------------------

RPM = 150


async def test_three_gateways_hold_one_rate_limit(
    tmp_path: Path, metered: RuleUpstream, redis_prefix: str
) -> None:
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres())
        engine = open_database(database_url)
        key, secret = KeyStore(engine).create("shared-rate", rpm=RPM)
        engine.dispose()
        limits = {"store": "redis", "redis_url": REDIS_URL, "key_prefix": redis_prefix}
        urls = stack.enter_context(gateways(tmp_path, 3, database_url, metered, limits))
        began = time.monotonic()
        answers = await _fire(urls, RPM, secret)  # each gateway alone gets the whole limit
        took = time.monotonic() - began
        rows = _logged(database_url, key.id, len(answers))

    assert {a.status for a in answers} <= {200, 429}, [
        a.body for a in answers if a.status not in (200, 429)
    ]
    accepted = [a for a in answers if a.status == 200]
    refused = [a for a in answers if a.status == 429]
    print(
        f"\nrpm {RPM} over 3 gateways: {len(accepted)} accepted, {len(refused)} refused, "
        f"{took:.2f}s"
    )
    # One limit for the key, not one per gateway (which would accept 3 * RPM).
    assert abs(len(accepted) - RPM) <= round(RPM * 0.02), len(accepted)
    assert len(rows) == len(answers)
    for answer in accepted:
        assert answer.headers["x-ratelimit-limit-requests"] == str(RPM)
    for answer in refused:
        assert answer.body["error"]["code"] == "rate_limit_exceeded", answer.body
        assert int(answer.headers["retry-after"]) >= 1
        for name in RATELIMIT_HEADERS:
            assert name in answer.headers, (name, dict(answer.headers))
        assert answer.headers["x-ratelimit-limit-requests"] == str(RPM)
        assert answer.headers["x-ratelimit-remaining-requests"] == "0"
        assert float(answer.headers["x-ratelimit-reset-requests"].rstrip("s")) > 0
    # Remaining counts down across the gateways: no two accepted answers saw the same count
    # remaining (each gateway would start at RPM - 1 if it counted alone).
    remaining = [int(a.headers["x-ratelimit-remaining-requests"]) for a in accepted]
    assert len(set(remaining)) >= len(remaining) - round(RPM * 0.02), sorted(remaining)
