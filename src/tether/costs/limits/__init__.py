"""Rate limits and money budgets: one store interface (base.py), three backends.

- `memory`: one process; exact sliding windows. Right for one replica.
- `database`: the gateway's SQLite or PostgreSQL, shared by replicas (or uvicorn workers) that
  share it; a weighted two-bucket minute. Every request takes two short transactions on its
  key's rows: one hot key took about 150 requests a second on a shared 2-core machine.
- `redis`: shared by any number of replicas; exact windows on Redis server time, one Lua
  script per call: about 2,000 requests a second on one key, same machine
  (benchmarks/limit_stores.py).

Configured in tether.toml:

    [limits]
    store = "redis"                        # memory (default), database or redis
    redis_url = "redis://127.0.0.1:6379/0"
    key_prefix = "tether"

    [[budgets]]                            # per prompt, whatever the key
    prompt = "summarize"
    usd = 25.0
    period = "month"                       # day, month (default) or total; calendar, UTC

`open_limit_store(settings.limits, engine_getter)` gives the configured store; a new
backend is one module plus an entry in `STORES`.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from tether.costs.limits.base import (
    Budget,
    Claim,
    LimitStore,
    Period,
    RateLimit,
    Reservation,
)
from tether.costs.limits.config import BudgetSettings, LimitSettings
from tether.costs.limits.quota import Allowance, Quota

Database = Callable[[], Engine]  # the engine of the settings' database, opened on demand


def _memory(settings: LimitSettings, database: Database) -> LimitStore:
    from tether.costs.limits.memory import MemoryLimitStore

    return MemoryLimitStore()


def _database(settings: LimitSettings, database: Database) -> LimitStore:
    from tether.costs.limits.database import DatabaseLimitStore

    return DatabaseLimitStore(database())  # the caller's engine: one per database


def _redis(settings: LimitSettings, database: Database) -> LimitStore:
    from tether.costs.limits.redis import RedisLimitStore

    return RedisLimitStore.open(settings.redis_url, key_prefix=settings.key_prefix)


# Imported lazily: the redis client and the database engine load only when chosen.
STORES: dict[str, Callable[[LimitSettings, Database], LimitStore]] = {
    "memory": _memory,
    "database": _database,
    "redis": _redis,
}


def open_limit_store(settings: LimitSettings, database: Database) -> LimitStore:
    """The store `settings.store` names; `database` gives the engine the database store uses
    (called only by that store: the others never open the database)."""
    return STORES[settings.store](settings, database)


__all__ = [
    "STORES",
    "Allowance",
    "Budget",
    "BudgetSettings",
    "Claim",
    "LimitSettings",
    "LimitStore",
    "Period",
    "Quota",
    "RateLimit",
    "Reservation",
    "open_limit_store",
]
