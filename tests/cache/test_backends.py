"""What every cache backend does the same way: the same tests run on each."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from tests.conftest import REDIS_URL
from tether.cache.backends.base import BackendStats, CacheBackend, Selector
from tether.cache.backends.local import LocalBackend
from tether.cache.backends.redis import RedisBackend
from tether.cache.entry import Answer, Entry

DIMENSIONS = 8
Factory = Callable[..., CacheBackend]


def redis_backend(prefix: str, max_entries: int) -> RedisBackend:
    return RedisBackend(Redis.from_url(REDIS_URL), dimensions=DIMENSIONS, key_prefix=prefix,
                        max_entries=max_entries)  # fmt: skip


def key(name: str) -> str:
    return hashlib.blake2b(name.encode(), digest_size=16).hexdigest()


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIMENSIONS).astype(np.float32)
    return vector / np.linalg.norm(vector)


def near(vector: np.ndarray, seed: int, noise: float) -> np.ndarray:
    moved = vector + noise * unit(seed)
    return (moved / np.linalg.norm(moved)).astype(np.float32)


def entry(name: str, *, vector: np.ndarray | None = None, **fields: object) -> Entry:
    now = time.time()
    base = Entry(
        key=key(name),
        namespace="ns-a",
        scope="local",
        prompt="support",
        version="1.0.0",
        model="fake",
        text=f"text of {name}" if vector is not None else None,
        answer=Answer((f"answer {name}",), None, "fake", "fake-1", "fake"),
        created_at=now,
        expires_at=now + 3600,
        cost_usd=0.002,
        latency_s=1.5,
        tags=(),
        vector=vector,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "redis"])
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Factory]:
    """Makes backends of one kind (default size limit: plenty), closed after the test."""
    made: list[CacheBackend] = []

    def factory(max_entries: int = 1000) -> CacheBackend:
        backend: CacheBackend
        if request.param == "local":
            backend = LocalBackend(tmp_path / f"cache-{len(made)}.sqlite", max_entries=max_entries)
        else:
            backend = redis_backend(request.getfixturevalue("redis_prefix"), max_entries)
        made.append(backend)
        return backend

    yield factory
    for backend in made:
        await backend.close()


@pytest.fixture
def backend(make: Factory) -> CacheBackend:
    return make()


async def test_an_entry_comes_back_whole(backend: CacheBackend) -> None:
    vector = unit(1)
    stored = entry(
        "full",
        vector=vector,
        prompt="support",
        version="2.1.0",
        tags=("faq", "billing"),
        answer=Answer(("one", "two ✓"), ("o", "ne"), "fake", "fake-2024", "fake"),
        cost_usd=0.0123,
        latency_s=0.25,
    )
    await backend.put(stored)
    found = await backend.get(stored.key, time.time())
    assert found == stored  # every field but the vector
    assert found is not None
    assert found.created_at == stored.created_at
    found_vector = found.vector
    if found_vector is None:  # a backend may keep the vector in its index only
        hits = await backend.search("ns-a", vector, 1, time.time())
        assert hits[0][0].key == stored.key
    else:
        np.testing.assert_array_equal(found_vector, vector)


async def test_an_exact_only_entry_without_prompt_comes_back(backend: CacheBackend) -> None:
    stored = entry("plain", prompt=None, version=None, text=None)
    await backend.put(stored)
    assert await backend.get(stored.key, time.time()) == stored
    assert await backend.get(key("missing"), time.time()) is None


async def test_a_put_replaces_the_entry_under_its_key(backend: CacheBackend) -> None:
    await backend.put(entry("same", vector=unit(1)))
    newer = entry("same", vector=unit(1), answer=Answer(("newer",), None, "f", "f", "f"))
    await backend.put(newer)
    found = await backend.get(newer.key, time.time())
    assert found is not None
    assert found.answer.choices == ("newer",)
    hits = await backend.search("ns-a", unit(1), 5, time.time())
    assert [hit.answer.choices for hit, _ in hits] == [("newer",)]
    assert (await backend.stats(time.time())).entries == 1


async def test_an_expired_entry_is_never_returned(backend: CacheBackend) -> None:
    now = time.time()
    past = entry("past", vector=unit(1), created_at=now - 20, expires_at=now - 10)
    soon = entry("soon", vector=unit(2), expires_at=now + 60)
    await backend.put(past)
    await backend.put(soon)
    assert await backend.get(past.key, now) is None
    assert [e.key for e, _ in await backend.search("ns-a", unit(1), 5, now)] == [soon.key]
    later = now + 120
    assert await backend.get(soon.key, later) is None
    assert await backend.search("ns-a", unit(2), 5, later) == []


async def test_an_entry_expires_for_real(backend: CacheBackend) -> None:
    now = time.time()
    await backend.put(entry("brief", vector=unit(1), expires_at=now + 0.3))
    assert await backend.get(key("brief"), time.time()) is not None
    time.sleep(0.4)
    assert await backend.get(key("brief"), time.time()) is None
    assert await backend.search("ns-a", unit(1), 3, time.time()) == []


async def test_search_gives_the_nearest_first(backend: CacheBackend) -> None:
    centre = unit(100)
    for distance in range(5):
        vector = near(centre, distance, 0.2 * distance)
        await backend.put(entry(f"n{distance}", vector=vector))
    hits = await backend.search("ns-a", centre, 3, time.time())
    assert [e.key for e, _ in hits] == [key("n0"), key("n1"), key("n2")]
    similarities = [similarity for _, similarity in hits]
    assert similarities == sorted(similarities, reverse=True)
    assert similarities[0] == pytest.approx(1.0, abs=1e-5)
    assert len(await backend.search("ns-a", centre, 10, time.time())) == 5


async def test_search_stays_in_its_namespace(backend: CacheBackend) -> None:
    vector = unit(7)
    await backend.put(entry("mine", vector=near(vector, 1, 0.5)))
    await backend.put(entry("theirs", vector=vector, namespace="ns-b"))
    await backend.put(entry("exact-only"))
    hits = await backend.search("ns-a", vector, 5, time.time())
    assert [e.key for e, _ in hits] == [key("mine")]
    assert all(e.namespace == "ns-a" for e, _ in hits)
    assert await backend.search("ns-c", vector, 5, time.time()) == []


def _varied() -> list[Entry]:
    now = time.time()
    return [
        entry("a", vector=unit(1), prompt="p1", version="1", tags=("faq",), scope="key:1"),
        entry("b", vector=unit(2), prompt="p1", version="2", tags=("faq", "x"), scope="key:2"),
        entry("c", vector=unit(3), prompt="p2", version="1", model="other", scope="key:1"),
        entry("d", prompt=None, version=None, created_at=now - 600, scope="key:2"),
        entry("e", vector=unit(5), prompt="p2", version="2", created_at=now - 600),
    ]


@pytest.mark.parametrize(
    ("selector", "dropped"),
    [
        (Selector(prompt="p1"), {"a", "b"}),
        (Selector(version="1"), {"a", "c"}),
        (Selector(prompt="p2", version="2"), {"e"}),
        (Selector(tag="faq"), {"a", "b"}),
        (Selector(tag="x"), {"b"}),
        (Selector(scope="key:1"), {"a", "c"}),
        (Selector(model="other"), {"c"}),
        (Selector(older_than_s=300), {"d", "e"}),
        (Selector(prompt="nobody"), set()),
        (Selector(), {"a", "b", "c", "d", "e"}),
    ],
)
async def test_invalidate_drops_what_matches(
    backend: CacheBackend, selector: Selector, dropped: set[str]
) -> None:
    entries = _varied()
    for stored in entries:
        await backend.put(stored)
    assert await backend.invalidate(selector, time.time()) == len(dropped)
    now = time.time()
    for stored in entries:
        kept = _name(stored) not in dropped
        assert (await backend.get(stored.key, now) is not None) == kept, _name(stored)
        if stored.vector is not None:
            hits = [e.key for e, _ in await backend.search("ns-a", stored.vector, 5, now)]
            assert (stored.key in hits) == kept, _name(stored)
    assert (await backend.stats(now)).entries == 5 - len(dropped)
    assert await backend.invalidate(selector, now) == 0


def _name(stored: Entry) -> str:
    return next(n for n in "abcde" if key(n) == stored.key)


async def test_the_size_limit_drops_the_least_recently_used(make: Factory) -> None:
    backend = make(max_entries=3)
    for name in ("a", "b", "c"):
        await backend.put(entry(name, vector=unit(ord(name))))
    await backend.put(entry("d", vector=unit(ord("d"))))
    now = time.time()
    assert await backend.get(key("a"), now) is None
    assert [e.key for e, _ in await backend.search("ns-a", unit(ord("a")), 5, now)].count(
        key("a")
    ) == 0
    assert (await backend.stats(now)).entries == 3
    await backend.get(key("b"), now)  # b is used: c is now the least recently used
    await backend.put(entry("e"))
    assert await backend.get(key("b"), now) is not None
    assert await backend.get(key("c"), now) is None
    assert {e.key for e, _ in await backend.search("ns-a", unit(ord("c")), 5, now)} == {
        key("b"),
        key("d"),
    }


async def test_stats_count_live_entries_by_prompt(backend: CacheBackend) -> None:
    now = time.time()
    await backend.put(entry("a", prompt="p1", vector=unit(1)))
    await backend.put(entry("b", prompt="p1"))
    await backend.put(entry("c", prompt=None, version=None))
    await backend.put(entry("d", prompt="p2", expires_at=now + 60))
    stats = await backend.stats(now)
    assert stats.entries == 4
    assert stats.by_prompt == {"p1": 2, "": 1, "p2": 1}
    assert stats.bytes >= sum(len(f"answer {n}") for n in "abcd")
    later = await backend.stats(now + 120)
    assert later.entries == 3
    assert later.by_prompt == {"p1": 2, "": 1}
    assert await backend.invalidate(Selector(), now) == 4
    assert await backend.stats(now) == BackendStats(entries=0)
