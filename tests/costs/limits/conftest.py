"""Every limit-store test runs on each backend: in process, SQLite, a fresh PostgreSQL
database and Redis (a random key prefix per test, its keys deleted afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, fresh_postgres
from tether.costs.limits import LimitStore
from tether.costs.limits.database import DatabaseLimitStore
from tether.costs.limits.memory import MemoryLimitStore
from tether.costs.limits.redis import RedisLimitStore

# A minute boundary two minutes before a new day, month and year (UTC).
START = datetime(2026, 12, 31, 23, 58, tzinfo=UTC).timestamp()


class Clock:
    """Epoch seconds that a test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
async def store(
    request: pytest.FixtureRequest, clock: Clock, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[LimitStore]:
    opened: LimitStore
    if request.param == "memory":
        opened = MemoryLimitStore(clock=clock)
    elif request.param == "redis":
        opened = RedisLimitStore.open(REDIS_URL, key_prefix=redis_prefix, clock=clock)
    elif request.param == "sqlite":
        opened = DatabaseLimitStore.open(f"sqlite:///{tmp_path / 'limits.db'}", clock=clock)
    else:
        with fresh_postgres() as url:
            opened = DatabaseLimitStore.open(url, clock=clock)
            yield opened
            await opened.close()
        return
    yield opened
    await opened.close()
