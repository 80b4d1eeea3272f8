"""The Redis backend: entries shared by every replica through one Redis server.

Redis holds the truth: each entry (with its vector) under its own key, expiring on its own,
plus the records invalidation, stats and the size limit read (redis_scripts.py). Plain Redis
has no vector search, so each replica keeps its own usearch index and follows a stream of
"add" and "drop" events every change appends. A search first reads the events it has not seen,
then searches the local index, then fetches the candidates from Redis: an entry Redis no longer
holds is never returned, whatever the local index still has.

A replica builds its index on its first search, from the entries themselves (the stream is
bounded, so it may no longer reach back to every live entry), and rebuilds it whenever it has
fallen so far behind that events it never read were trimmed away.

The client must not decode responses: entries and vectors are bytes.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from tether.cache.backends.base import BackendStats, Selector
from tether.cache.backends.redis_scripts import DROP, GET, PUT
from tether.cache.config import CacheSettings
from tether.cache.embedders.base import Vectors
from tether.cache.entry import Answer, Entry
from tether.cache.semantic.index import VectorIndex
from tether.errors import ConfigError, DatabaseUnavailable

log = logging.getLogger("tether.cache")
MAX_CONNECTIONS = 64
POOL_WAIT_S = 5.0
TIMEOUT_S = 5.0
LOG_PER_ENTRY = 3  # stream events kept per entry allowed: replicas a little behind lose none
LOG_MIN = 10_000
BATCH = 1000  # events, records or entries per round trip
SEARCH_TRIES = 3  # rounds of refilling a search whose candidates had gone from Redis
_T = TypeVar("_T")


class RedisBackend:
    name = "redis"

    def __init__(
        self,
        client: Redis,
        *,
        dimensions: int | None = None,
        key_prefix: str = "tether",
        max_entries: int = 100_000,
    ) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, not {max_entries}")
        self._redis = client
        self._where = _describe(client)
        self._dimensions = dimensions
        self._max_entries = max_entries
        self._log_max = max(LOG_PER_ENTRY * max_entries, LOG_MIN)
        base = f"{key_prefix}:cache"
        self._entry_prefix = f"{base}:e:"
        self._meta = f"{base}:meta"
        self._lru = f"{base}:lru"
        self._exp = f"{base}:exp"
        self._clock = f"{base}:clock"
        self._log = f"{base}:log"
        self._put = client.register_script(PUT)
        self._get = client.register_script(GET)
        self._drop = client.register_script(DROP)
        self._index = VectorIndex()
        self._read_id: bytes | None = None  # the last event applied; None: no index built yet
        self._read_count = 0  # the stream's entries-added count at _read_id
        self._sync = asyncio.Lock()

    # -- lookups ------------------------------------------------------------------------------

    async def get(self, key: str, now: float) -> Entry | None:
        raw = await self._call(
            self._get(keys=[self._entry_key(key), self._lru, self._clock], args=[key])
        )
        entry = _decode(_bytes(raw)) if raw is not None else None
        if entry is None or entry.expired(now):
            return None
        return entry

    async def search(
        self, namespace: str, vector: Vectors, k: int, now: float
    ) -> list[tuple[Entry, float]]:
        if k <= 0:
            return []
        async with self._sync:
            await self._follow()
        want = k
        for _ in range(SEARCH_TRIES):
            found = await asyncio.to_thread(self._index.search, namespace, vector, want)
            if not found:
                return []
            raws = await self._call(self._redis.mget([self._entry_key(key) for key, _ in found]))
            hits: list[tuple[Entry, float]] = []
            gone: list[str] = []
            expired = 0
            for (key, similarity), raw in zip(found, raws, strict=True):
                entry = _decode(_bytes(raw)) if raw is not None else None
                if entry is None or entry.namespace != namespace:
                    gone.append(key)
                elif entry.expired(now):
                    expired += 1
                else:
                    hits.append((entry, similarity))
            for key in gone:  # dropped in Redis; the event may still be on its way
                self._index.remove(namespace, key)
            if len(hits) >= k or len(found) < want or not gone:
                return hits[:k]
            want = k + expired
        return hits[:k]

    # -- changes ------------------------------------------------------------------------------

    async def put(self, entry: Entry) -> None:
        vector = entry.vector_bytes()
        size = None if vector is None else len(vector) // 4
        if self._dimensions is not None and size is not None and size != self._dimensions:
            raise ValueError(
                f"entry {entry.key}: a vector of {size} dimensions, "
                f"the cache takes {self._dimensions}"
            )
        now = time.time()
        ttl_ms = int((entry.expires_at - now) * 1000)
        args: list[Any] = [
            self._entry_prefix,
            self._log_max,
            entry.key,
            _encode(entry),
            _Record.of(entry).dumps(),
            ttl_ms,
            repr(entry.expires_at),
            self._max_entries,
            repr(now),
            entry.namespace,
            vector if vector is not None else b"",
        ]
        keys = [
            self._meta,
            self._lru,
            self._exp,
            self._log,
            self._clock,
            self._entry_key(entry.key),
        ]
        await self._call(self._put(keys=keys, args=args))

    async def invalidate(self, selector: Selector, now: float) -> int:
        matching: dict[bytes, tuple[bytes, bool]] = {}
        for key, raw in await self._records():
            record = _Record.loads(raw)
            if record is not None and record.matches(selector, now):
                matching[key] = (raw, not record.expired(now))
        dropped = 0
        chosen = list(matching.items())
        for start in range(0, len(chosen), BATCH):
            chunk = chosen[start : start + BATCH]
            args: list[Any] = [self._entry_prefix, self._log_max]
            for key, (raw, _) in chunk:
                args += [key, raw]
            done = await self._call(
                self._drop(keys=[self._meta, self._lru, self._exp, self._log], args=args)
            )
            dropped += sum(
                1 for (_, (_, live)), flag in zip(chunk, done, strict=True) if flag and live
            )
        return dropped

    async def stats(self, now: float) -> BackendStats:
        entries = 0
        size = 0
        by_prompt: dict[str, int] = {}
        for _, raw in await self._records():
            record = _Record.loads(raw)
            if record is None or record.expired(now):
                continue
            entries += 1
            size += record.size
            prompt = record.prompt or ""
            by_prompt[prompt] = by_prompt.get(prompt, 0) + 1
        return BackendStats(entries=entries, by_prompt=by_prompt, bytes=size)

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)

    # -- following other replicas -------------------------------------------------------------

    async def _follow(self) -> None:
        """Apply the events not read yet (the lock held); build the index on first use."""
        if self._read_id is None:
            await self._rebuild()
        rebuilt = False
        while True:
            assert self._read_id is not None
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xinfo_stream(self._log)
                pipe.xread({self._log: self._read_id}, count=BATCH)
                info, read = await self._call(pipe.execute(raise_on_error=False))
            if isinstance(info, ResponseError):  # no stream: nothing was ever added
                if self._read_count:
                    await self._rebuild()  # the stream was deleted under us
                return
            if isinstance(read, Exception):
                raise read
            events: list[tuple[bytes, dict[bytes, bytes]]] = read[0][1] if read else []
            added = info.get("entries-added")
            if added is not None:
                unread = int(added) - self._read_count
                if (unread < 0 or len(events) != min(unread, BATCH)) and not rebuilt:
                    log.info("cache events were trimmed before this replica read them: rebuild")
                    rebuilt = True
                    await self._rebuild()
                    continue
            if events:
                await asyncio.to_thread(self._apply, events)
                self._read_id = events[-1][0]
                self._read_count += len(events)
            if len(events) < BATCH:
                return

    async def _rebuild(self) -> None:
        """A fresh index from the entries Redis holds; events after `_read_id` follow."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xinfo_stream(self._log)
            (info,) = await self._call(pipe.execute(raise_on_error=False))
        if isinstance(info, ResponseError):
            read_id, read_count = b"0-0", 0
        else:
            read_id, read_count = info["last-generated-id"], int(info.get("entries-added", 0))
        index = VectorIndex()
        keys = [key for key, raw in await self._records() if _Record.has_vector(raw)]
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            raws = await self._call(
                self._redis.mget([self._entry_prefix.encode() + k for k in chunk])
            )
            entries = [e for e in (_decode(_bytes(r)) for r in raws if r is not None) if e]
            await asyncio.to_thread(_index_all, index, entries)
        self._index = index
        self._read_id, self._read_count = read_id, read_count

    def _apply(self, events: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for _, fields in events:
            key, namespace = fields[b"k"].decode(), fields[b"n"].decode()
            if fields[b"o"] == b"a":
                vector = Entry.vector_from(fields[b"v"])
                assert vector is not None
                self._index.add(namespace, key, vector)
            else:
                self._index.remove(namespace, key)

    # -- Redis --------------------------------------------------------------------------------

    async def _records(self) -> list[tuple[bytes, bytes]]:
        """Every (key, record) in the meta hash, read in slices."""
        found: dict[bytes, bytes] = {}  # HSCAN may return a field twice
        cursor = 0
        while True:
            cursor, page = await self._call(self._redis.hscan(self._meta, cursor, count=BATCH))
            assert isinstance(page, dict)
            found.update((_bytes(key), _bytes(value)) for key, value in page.items())
            if cursor == 0:
                return list(found.items())

    def _entry_key(self, key: str) -> str:
        return self._entry_prefix + key

    async def _call(self, pending: Awaitable[_T]) -> _T:
        try:
            return await pending
        except (RedisConnectionError, RedisTimeout) as exc:
            log.warning("redis cache at %s unavailable: %s", self._where, exc)
            error = DatabaseUnavailable(self._where, f"Redis did not answer ({exc})")
            error.fix = "check [cache] redis_url in the settings and that Redis is running"
            raise error from None


def open_redis_backend(settings: CacheSettings, dimensions: int | None = None) -> RedisBackend:
    """A backend on `settings.redis_url` (connections are made on first use)."""
    try:
        # A burst waits for a free connection (up to POOL_WAIT_S) instead of failing at once.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
        )
    except ValueError as exc:
        raise ConfigError(
            f"not a Redis URL: {exc}",
            file=None,
            field="cache.redis_url",
            fix='give a URL like "redis://127.0.0.1:6379/0"',
        ) from None
    return RedisBackend(
        Redis(connection_pool=pool),
        dimensions=dimensions,
        key_prefix=settings.key_prefix,
        max_entries=settings.max_entries,
    )


def _describe(client: Redis) -> str:
    """Where the client connects, without credentials."""
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    host, port = kwargs.get("host", "localhost"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


def _bytes(value: bytes | str) -> bytes:
    # The client is made without decode_responses; a str means one made with it.
    if not isinstance(value, bytes):
        raise TypeError("the cache's Redis client must not decode responses")
    return value


def _index_all(index: VectorIndex, entries: Sequence[Entry]) -> None:
    for entry in entries:
        if entry.vector is not None:
            index.add(entry.namespace, entry.key, entry.vector)


# -- encoding ---------------------------------------------------------------------------------

_HEADER = struct.Struct("<BBII")  # format, has vector, head length, answer length
_FORMAT = 1


def _encode(entry: Entry) -> bytes:
    head = orjson.dumps(
        [entry.key, entry.namespace, entry.scope, entry.prompt, entry.version, entry.model,
         entry.text, entry.created_at, entry.expires_at, entry.cost_usd, entry.latency_s,
         entry.tags]
    )  # fmt: skip
    answer = entry.answer.dumps()
    vector = entry.vector_bytes()
    header = _HEADER.pack(_FORMAT, vector is not None, len(head), len(answer))
    return b"".join((header, head, answer, vector or b""))


def _decode(raw: bytes) -> Entry | None:
    """The entry, or None for one written in another format (a newer release's)."""
    if len(raw) < _HEADER.size or raw[0] != _FORMAT:
        return None
    _, has_vector, head_size, answer_size = _HEADER.unpack_from(raw)
    start = _HEADER.size
    head = orjson.loads(raw[start : start + head_size])
    answer = Answer.loads(raw[start + head_size : start + head_size + answer_size])
    vector = raw[start + head_size + answer_size :] if has_vector else None
    (key, namespace, scope, prompt, version, model, text, created_at, expires_at, cost_usd,
     latency_s, tags) = head  # fmt: skip
    return Entry(
        key=key, namespace=namespace, scope=scope, prompt=prompt, version=version, model=model,
        text=text, answer=answer, created_at=created_at, expires_at=expires_at,
        cost_usd=cost_usd, latency_s=latency_s, tags=tuple(tags),
        vector=Entry.vector_from(vector),
    )  # fmt: skip


@dataclass(frozen=True)
class _Record:
    """What invalidation and stats need of an entry, without fetching it."""

    namespace: str
    vector: bool
    scope: str
    prompt: str | None
    version: str | None
    model: str
    tags: tuple[str, ...]
    created_at: float
    expires_at: float
    size: int  # the answer's choices, in characters

    @classmethod
    def of(cls, entry: Entry) -> _Record:
        return cls(
            namespace=entry.namespace, vector=entry.vector is not None, scope=entry.scope,
            prompt=entry.prompt, version=entry.version, model=entry.model, tags=entry.tags,
            created_at=entry.created_at, expires_at=entry.expires_at,
            size=sum(len(choice) for choice in entry.answer.choices),
        )  # fmt: skip

    def dumps(self) -> bytes:
        # An array, namespace and vector flag first: the scripts read those two by position.
        return orjson.dumps(
            [self.namespace, int(self.vector), self.scope, self.prompt, self.version,
             self.model, self.tags, self.created_at, self.expires_at, self.size]
        )  # fmt: skip

    @classmethod
    def loads(cls, raw: bytes) -> _Record | None:
        try:
            (namespace, vector, scope, prompt, version, model, tags, created_at, expires_at,
             size) = orjson.loads(raw)  # fmt: skip
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return None
        return cls(namespace, bool(vector), scope, prompt, version, model, tuple(tags),
                   float(created_at), float(expires_at), int(size))  # fmt: skip

    @staticmethod
    def has_vector(raw: bytes) -> bool:
        record = _Record.loads(raw)
        return record is not None and record.vector

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def matches(self, selector: Selector, now: float) -> bool:
        # Selector.matches, on the record rather than the whole entry.
        return (
            (selector.prompt is None or self.prompt == selector.prompt)
            and (selector.version is None or self.version == selector.version)
            and (selector.tag is None or selector.tag in self.tags)
            and (selector.scope is None or self.scope == selector.scope)
            and (selector.model is None or self.model == selector.model)
            and (selector.older_than_s is None or now - self.created_at > selector.older_than_s)
        )
