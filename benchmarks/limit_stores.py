"""Limit stores under concurrency: money admitted against one budget, and reservation throughput.

Side by side, on the same machine in one run: the gateway's former in-process `Limiter`
(check the budget before the call, charge it after; reduced here to that rule) and the three limit
stores (costs/limits: reserve the maximum before the call, settle after), memory, database
(SQLite file, PostgreSQL) and Redis.

1. Overshoot: `--requests` concurrent requests of `--cost` USD each against a `--budget` USD
   budget, each holding its admission for `--call-ms` (the provider call) before it is charged
   or settled. Reported: USD admitted beyond the budget.
2. Throughput: `--operations` reserve+settle pairs, `--concurrency` at a time, against one key's
   rpm, tpm and monthly budget (a hot key: the worst case for row or key contention).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _results as bench

NAME = "limit_stores"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"


def parse_args(argv: list[str] | None) -> Any:
    parser = bench.base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cost", type=float, default=0.01)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--call-ms", type=float, default=20.0)
    parser.add_argument("--operations", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--postgres-url", default=PG_URL, help="a scratch database is made here")
    parser.add_argument("--redis-url", default=REDIS_URL, help="keys under a random prefix")
    return parser.parse_args(argv)


@contextmanager
def scratch_postgres(admin_url: str) -> Iterator[str]:
    import sqlalchemy as sa

    name = f"tether_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class CheckThenCharge:
    """The gateway's former in-process limiter, reduced to its budget rule: a request is
    admitted while the spend charged so far is under the budget, and charged after its call."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self.spent = 0.0

    def admit(self) -> bool:
        return self.spent < self.budget

    def charge(self, cost: float) -> None:
        self.spent += cost


async def limiter_overshoot(args: Any) -> float:
    """The former Limiter: admitted while nothing is charged yet, so a burst passes whole."""
    limiter = CheckThenCharge(args.budget)

    async def one() -> bool:
        if not limiter.admit():
            return False
        await asyncio.sleep(args.call_ms / 1000)
        limiter.charge(args.cost)
        return True

    return overshoot(await asyncio.gather(*(one() for _ in range(args.requests))), args)


async def store_overshoot(store: Any, args: Any) -> float:
    from tether.costs.limits import Budget, Claim
    from tether.errors import BudgetExhausted

    claim = Claim(budgets=(Budget.for_key("bench-burst", args.budget, "month"),),
                  cost_usd=args.cost)  # fmt: skip

    async def one() -> bool:
        try:
            held = await store.reserve(claim)
        except BudgetExhausted:
            return False
        await asyncio.sleep(args.call_ms / 1000)
        await store.settle(held, tokens=0, cost_usd=args.cost)
        return True

    return overshoot(await asyncio.gather(*(one() for _ in range(args.requests))), args)


def overshoot(admitted: list[bool], args: Any) -> float:
    """USD admitted beyond the budget, to the nano-dollar (summing floats would drift)."""
    return max(round(sum(admitted) * args.cost - args.budget, 9), 0.0)


async def store_throughput(store: Any, args: Any) -> dict[str, Any]:
    from tether.costs.limits import Budget, Claim, RateLimit

    claim = Claim(
        rates=(RateLimit("key:hot", "requests", 10**9), RateLimit("key:hot", "tokens", 10**12)),
        budgets=(Budget.for_key("hot", 10**6, "month"),),
        tokens=500,
        cost_usd=0.001,
    )
    gate = asyncio.Semaphore(args.concurrency)
    latencies: list[float] = []

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            held = await store.reserve(claim)
            await store.settle(held, tokens=200, cost_usd=0.0005)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(args.operations)))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "pairs_per_s": args.operations / wall,
        "p50_ms": bench.percentile(ordered, 50),
        "p99_ms": bench.percentile(ordered, 99),
    }


async def measure(name: str, opener: Callable[[], Awaitable[Any]], args: Any) -> dict[str, Any]:
    store = await opener()
    try:
        overshoot = await store_overshoot(store, args)
        return {"store": name, "overshoot_usd": overshoot, **await store_throughput(store, args)}
    finally:
        await store.close()


async def run(args: Any) -> list[dict[str, Any]]:
    from tether.costs.limits.database import DatabaseLimitStore
    from tether.costs.limits.memory import MemoryLimitStore
    from tether.costs.limits.redis import RedisLimitStore

    rows: list[dict[str, Any]] = [
        {"store": "former Limiter (check, then charge)",
         "overshoot_usd": await limiter_overshoot(args)}
    ]  # fmt: skip

    async def memory() -> Any:
        return MemoryLimitStore()

    rows.append(await measure("memory", memory, args))
    with tempfile.TemporaryDirectory() as folder:

        async def sqlite() -> Any:
            return DatabaseLimitStore.open(f"sqlite:///{folder}/limits.db")

        rows.append(await measure("database (SQLite)", sqlite, args))
    try:
        with scratch_postgres(args.postgres_url) as url:

            async def postgres() -> Any:
                return DatabaseLimitStore.open(url)

            rows.append(await measure("database (PostgreSQL)", postgres, args))
    except Exception as exc:  # no server: say so in the results rather than fail the run
        rows.append({"store": "database (PostgreSQL)", "skipped": f"{type(exc).__name__}"})
    prefix = f"tether-bench-{uuid.uuid4().hex}"

    async def redis() -> Any:
        return RedisLimitStore.open(args.redis_url, key_prefix=prefix)

    try:
        rows.append(await measure("redis", redis, args))
    except Exception as exc:
        rows.append({"store": "redis", "skipped": f"{type(exc).__name__}"})
    finally:
        await _drop_prefix(args.redis_url, prefix)
    return rows


async def _drop_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        stale = [key async for key in client.scan_iter(f"{prefix}:*", count=1000)]
        if stale:
            await client.delete(*stale)
    except Exception:
        pass  # no server: nothing to clean
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = bench.utc_now()
    rows = asyncio.run(run(args))
    measured = [r for r in rows[1:] if "overshoot_usd" in r]
    worst = max(r["overshoot_usd"] for r in measured)
    payload: dict[str, Any] = {
        "benchmark": NAME,
        "compared": "the former in-process Limiter (check before, charge after) against the "
        "memory, database and Redis limit stores (reserve before, settle after)",
        "headline": "largest overshoot of a budget by any limit store (USD)",
        "value": worst,
        "target": args.cost,
        "target_rule": f"<= one request's cost (${args.cost:g})",
        "meets_target": worst <= args.cost + 1e-9,
        "date_utc": started,
        "machine": bench.machine(),
        "versions": bench.versions("tether", "sqlalchemy", "psycopg", "redis"),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": rows,
    }
    bench.write_results(
        NAME,
        args.out,
        payload,
        title="Limit stores: budget overshoot under a burst, and throughput on one hot key",
        header=("store", "overshoot $", "reserve+settle / s", "p50 ms", "p99 ms"),
        rows=[
            (
                r["store"],
                bench.fmt(r.get("overshoot_usd"), 4) if "skipped" not in r else r["skipped"],
                bench.fmt(r.get("pairs_per_s"), 0),
                bench.fmt(r.get("p50_ms"), 1),
                bench.fmt(r.get("p99_ms"), 1),
            )
            for r in rows
        ],
        notes=[
            f"Overshoot: {args.requests} concurrent requests of ${args.cost:g} against a "
            f"${args.budget:g} budget, each admitted request holding {args.call_ms:g} ms.",
            f"Throughput: {args.operations} reserve+settle pairs, {args.concurrency} at a time, "
            "on one key's rpm, tpm and budget; a shared 2-core machine, so read the ratios.",
        ],
    )
    return payload


if __name__ == "__main__":
    main()
