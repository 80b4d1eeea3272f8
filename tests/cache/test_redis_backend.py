"""The Redis backend as several replicas see it: each keeps its own vector index, Redis holds
the truth."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
import redis

from tests.cache import redis_worker
from tests.cache.test_backends import DIMENSIONS, entry, key, near, redis_backend, unit
from tests.conftest import REDIS_URL
from tether.cache.backends.base import Selector
from tether.cache.backends.redis import RedisBackend, open_redis_backend
from tether.cache.config import CacheSettings
from tether.errors import ConfigError, DatabaseUnavailable

WORKER = Path(redis_worker.__file__)
Replica = Callable[..., RedisBackend]


@pytest.fixture
async def replica(redis_prefix: str) -> AsyncIterator[Replica]:
    """Makes replicas sharing one prefix, closed after the test."""
    made: list[RedisBackend] = []

    def factory(max_entries: int = 1000) -> RedisBackend:
        backend = redis_backend(redis_prefix, max_entries)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.close()


@pytest.fixture
def raw(redis_prefix: str) -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


async def test_what_one_replica_puts_the_other_finds(replica: Replica) -> None:
    a, b = replica(), replica()
    assert await b.search("ns-a", unit(1), 3, time.time()) == []  # b's index is built, empty
    stored = entry("shared", vector=unit(1))
    await a.put(stored)
    assert await b.get(stored.key, time.time()) == stored
    hits = await b.search("ns-a", near(unit(1), 2, 0.1), 3, time.time())
    assert [e.key for e, _ in hits] == [stored.key]
    assert hits[0][0].answer == stored.answer


async def test_an_invalidation_reaches_the_other_replica(replica: Replica) -> None:
    a, b = replica(), replica()
    await a.put(entry("gone", vector=unit(1), prompt="old"))
    await a.put(entry("kept", vector=unit(2), prompt="new"))
    assert len(await b.search("ns-a", unit(1), 5, time.time())) == 2
    assert await a.invalidate(Selector(prompt="old"), time.time()) == 1
    assert [e.key for e, _ in await b.search("ns-a", unit(1), 5, time.time())] == [key("kept")]
    assert await b.get(key("gone"), time.time()) is None


async def test_an_entry_deleted_in_redis_is_never_returned(
    replica: Replica, raw: redis.Redis, redis_prefix: str
) -> None:
    a = replica()
    await a.put(entry("deleted", vector=unit(1)))
    await a.put(entry("other", vector=unit(2)))
    assert len(await a.search("ns-a", unit(1), 5, time.time())) == 2
    raw.delete(f"{redis_prefix}:cache:e:{key('deleted')}")  # as if Redis evicted it
    hits = await a.search("ns-a", unit(1), 5, time.time())
    assert [e.key for e, _ in hits] == [key("other")]
    assert await a.get(key("deleted"), time.time()) is None


async def test_a_search_refills_past_entries_gone_from_redis(
    replica: Replica, raw: redis.Redis, redis_prefix: str
) -> None:
    a = replica()
    centre = unit(50)
    for number in range(6):
        await a.put(entry(f"n{number}", vector=near(centre, number, 0.1 * number)))
    await a.search("ns-a", centre, 1, time.time())
    raw.delete(*[f"{redis_prefix}:cache:e:{key(f'n{n}')}" for n in range(3)])
    hits = await a.search("ns-a", centre, 2, time.time())
    assert [e.key for e, _ in hits] == [key("n3"), key("n4")]


async def test_a_replica_started_late_builds_its_index_from_the_entries(
    replica: Replica, raw: redis.Redis, redis_prefix: str
) -> None:
    a = replica()
    for number in range(5):
        await a.put(entry(f"n{number}", vector=unit(number)))
    raw.delete(f"{redis_prefix}:cache:log")  # the events are gone; the entries are not
    b = replica()
    for number in range(5):
        hits = await b.search("ns-a", unit(number), 1, time.time())
        assert [e.key for e, _ in hits] == [key(f"n{number}")]


async def test_a_replica_that_fell_behind_the_trimmed_stream_rebuilds(
    replica: Replica, raw: redis.Redis, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = replica(), replica()
    await a.put(entry("first", vector=unit(1000)))
    assert len(await b.search("ns-a", unit(1000), 1, time.time())) == 1
    a._log_max = 10  # a short stream: b misses the events it did not read in time
    for number in range(300):
        await a.put(entry(f"n{number}", vector=unit(number)))
    assert raw.xlen(f"{redis_prefix}:cache:log") < 300
    caplog.set_level("INFO", logger="tether.cache")
    for number in (0, 150, 299):
        hits = await b.search("ns-a", unit(number), 1, time.time())
        assert [e.key for e, _ in hits] == [key(f"n{number}")]
    assert "trimmed before this replica read them" in caplog.text


async def test_replacing_an_entry_by_an_exact_only_one_drops_its_vector(replica: Replica) -> None:
    a, b = replica(), replica()
    await a.put(entry("changed", vector=unit(1)))
    assert len(await b.search("ns-a", unit(1), 3, time.time())) == 1
    await a.put(entry("changed"))
    assert await b.search("ns-a", unit(1), 3, time.time()) == []
    assert await b.get(key("changed"), time.time()) is not None


async def test_expired_records_are_purged_on_later_puts(
    replica: Replica, raw: redis.Redis, redis_prefix: str
) -> None:
    a = replica()
    await a.put(entry("brief", vector=unit(1), expires_at=time.time() + 0.2))
    time.sleep(0.3)
    await a.put(entry("later"))
    assert raw.hkeys(f"{redis_prefix}:cache:meta") == [key("later").encode()]
    assert raw.zrange(f"{redis_prefix}:cache:lru", 0, -1) == [key("later").encode()]
    assert raw.ttl(f"{redis_prefix}:cache:e:{key('later')}") > 3500


async def test_a_vector_of_another_length_is_refused(replica: Replica) -> None:
    with pytest.raises(ValueError, match="3 dimensions"):
        await replica().put(entry("short", vector=unit(1)[:3]))


async def test_an_unreachable_server_names_it_without_the_password() -> None:
    settings = CacheSettings(backend="redis", redis_url="redis://:secret@127.0.0.1:1/2")
    backend = open_redis_backend(settings, DIMENSIONS)
    with pytest.raises(DatabaseUnavailable) as caught:
        await backend.get(key("x"), time.time())
    assert "redis://127.0.0.1:1/2" in str(caught.value)
    assert "secret" not in str(caught.value)
    assert "redis_url" in caught.value.fix
    await backend.close()


def test_a_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"cache\.redis_url"):
        open_redis_backend(CacheSettings(redis_url="http://example.com"), DIMENSIONS)


async def test_open_uses_the_settings(redis_prefix: str) -> None:
    settings = CacheSettings(backend="redis", key_prefix=redis_prefix, max_entries=2)
    backend = open_redis_backend(settings, DIMENSIONS)
    try:
        for name in "abc":
            await backend.put(entry(name))
        assert (await backend.stats(time.time())).entries == 2
    finally:
        await backend.close()


def test_two_processes_share_the_cache(redis_prefix: str) -> None:
    count = 20

    def start(mode: str) -> subprocess.Popen[str]:
        command = [sys.executable, str(WORKER), mode, REDIS_URL, redis_prefix, str(count)]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    finder = start("find")  # started together: it waits for the other's entries
    putter = start("put")
    results = []
    for process in (putter, finder):
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, err
        results.append(out)
    found = orjson.loads(results[1])
    assert found["exact"] == [f"answer {n}" for n in range(count)]
    assert found["nearest"] == [redis_worker.key_for(n) for n in range(count)]


async def test_many_changes_are_followed_in_slices(replica: Replica) -> None:
    a, b = replica(max_entries=5000), replica(max_entries=5000)
    assert await b.search("ns-a", unit(0), 1, time.time()) == []
    count = 1100  # more than one slice of events, records and entries
    for number in range(count):
        await a.put(entry(f"n{number}", vector=unit(number), prompt=f"p{number % 2}"))
    searches = [b.search("ns-a", unit(n), 1, time.time()) for n in (0, 777, 1099)]
    found = await asyncio.gather(*searches)  # one follows the stream, the others wait for it
    assert [[e.key for e, _ in hits] for hits in found] == [
        [key("n0")], [key("n777")], [key("n1099")]
    ]  # fmt: skip
    c = replica(max_entries=5000)  # builds its index from the entries
    assert [e.key for e, _ in await c.search("ns-a", unit(1034), 1, time.time())] == [key("n1034")]
    assert (await b.stats(time.time())).by_prompt == {"p0": 550, "p1": 550}
    assert await b.invalidate(Selector(), time.time()) == count
    assert await a.search("ns-a", unit(777), 5, time.time()) == []
    assert await c.search("ns-a", unit(777), 5, time.time()) == []
