"""Rate limits and money budgets: one store interface, three backends.

`open_limit_store(settings.limits, settings.database)` gives the configured one; a new
backend is one module plus an entry in `STORES`.
"""

from __future__ import annotations

from collections.abc import Callable

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


def _memory(settings: LimitSettings, database_url: str) -> LimitStore:
    from tether.costs.limits.memory import MemoryLimitStore

    return MemoryLimitStore()


def _database(settings: LimitSettings, database_url: str) -> LimitStore:
    from tether.costs.limits.database import DatabaseLimitStore

    return DatabaseLimitStore.open(database_url)


def _redis(settings: LimitSettings, database_url: str) -> LimitStore:
    from tether.costs.limits.redis import RedisLimitStore

    return RedisLimitStore.open(settings.redis_url, key_prefix=settings.key_prefix)


# Imported lazily: the redis client and the database engine load only when chosen.
STORES: dict[str, Callable[[LimitSettings, str], LimitStore]] = {
    "memory": _memory,
    "database": _database,
    "redis": _redis,
}


def open_limit_store(settings: LimitSettings, database_url: str) -> LimitStore:
    """The store `settings.store` names; `database_url` is used by the database store."""
    return STORES[settings.store](settings, database_url)


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
