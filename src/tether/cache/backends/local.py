"""The local backend: entries in process memory, persisted to a SQLite file.

Lookups never touch the file: an exact hit is one dict lookup, a semantic one a search of the
in-process usearch graphs. Writes go to the file from one writer thread (write-behind), so a
request never waits on the disk; a restart reloads the live entries, newest first, up to the
size limit.

Another process (`tether cache invalidate` beside a running gateway) invalidates through the
file: it deletes the rows and appends the selector to `invalidations`. The writer thread polls
SQLite's `data_version` (it changes only when another connection wrote) and applies what it
finds to memory, so a running gateway stops serving those entries within a second.

A cache is not a record: a file from another schema version is emptied, never migrated.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import orjson

from tether.cache.backends.base import BackendStats, Selector
from tether.cache.embedders.base import Vectors
from tether.cache.entry import Answer, Entry
from tether.cache.semantic.index import VectorIndex

log = logging.getLogger("tether.cache")
SCHEMA_VERSION = 1
POLL_S = 1.0  # how often the writer looks for other processes' invalidations
_COLUMNS = ("key, namespace, scope, prompt, version, model, text, answer, created_at, "
            "expires_at, cost_usd, latency_s, tags, vector")  # fmt: skip
_DDL = (
    """CREATE TABLE IF NOT EXISTS entries (
        key TEXT PRIMARY KEY, namespace TEXT NOT NULL, scope TEXT NOT NULL, prompt TEXT,
        version TEXT, model TEXT NOT NULL, text TEXT, answer BLOB NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL, cost_usd REAL NOT NULL,
        latency_s REAL NOT NULL, tags TEXT NOT NULL, vector BLOB)""",
    "CREATE INDEX IF NOT EXISTS entries_expiry ON entries (expires_at)",
    """CREATE TABLE IF NOT EXISTS invalidations (
        id INTEGER PRIMARY KEY AUTOINCREMENT, selector TEXT NOT NULL, at REAL NOT NULL)""",
)
_Job = Callable[[sqlite3.Connection], None]


class LocalBackend:
    name = "local"

    def __init__(self, path: Path | None, *, max_entries: int = 100_000) -> None:
        self._path = path
        self._max_entries = max_entries
        self._entries: OrderedDict[str, Entry] = OrderedDict()  # least recently used first
        self._index = VectorIndex()
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._seen_invalidation = 0
        if path is not None:
            self._load(path)

    # -- lookups ------------------------------------------------------------------------------

    async def get(self, key: str, now: float) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expired(now):
                self._drop(entry)
                return None
            self._entries.move_to_end(key)
        return entry

    async def search(
        self, namespace: str, vector: Vectors, k: int, now: float
    ) -> list[tuple[Entry, float]]:
        found: list[tuple[Entry, float]] = []
        # The graph search is CPU work (about half a millisecond at 100k entries): a thread.
        nearest = await asyncio.to_thread(self._index.search, namespace, vector, k)
        for key, similarity in nearest:
            with self._lock:
                entry = self._entries.get(key)
                if entry is None:
                    continue
                if entry.expired(now):
                    self._drop(entry)
                    continue
            found.append((entry, similarity))
        return found

    # -- changes ------------------------------------------------------------------------------

    async def put(self, entry: Entry) -> None:
        with self._lock:
            old = self._entries.pop(entry.key, None)
            if old is not None and old.vector is not None:
                self._index.remove(old.namespace, old.key)
            self._entries[entry.key] = _without_vector(entry)
            if entry.vector is not None:
                self._index.add(entry.namespace, entry.key, entry.vector)
            evicted: list[Entry] = []
            while len(self._entries) > self._max_entries:
                _, oldest = self._entries.popitem(last=False)
                self._unindex(oldest)
                evicted.append(oldest)
        self._write(_insert(entry))
        if evicted:
            self._write(_delete([e.key for e in evicted]))

    async def invalidate(self, selector: Selector, now: float) -> int:
        dropped = self.drop_matching(selector, now)
        self._write(_record_invalidation(selector, now))
        return dropped

    def drop_matching(self, selector: Selector, now: float) -> int:
        with self._lock:
            matching = [e for e in self._entries.values() if selector.matches(e, now)]
            for entry in matching:
                self._drop(entry, persist=False)
        if matching:
            self._write(_delete([e.key for e in matching]))
        return len(matching)

    async def stats(self, now: float) -> BackendStats:
        with self._lock:
            live = [e for e in self._entries.values() if not e.expired(now)]
        by_prompt: dict[str, int] = {}
        size = 0
        for entry in live:
            by_prompt[entry.prompt or ""] = by_prompt.get(entry.prompt or "", 0) + 1
            size += sum(len(choice) for choice in entry.answer.choices)
        return BackendStats(entries=len(live), by_prompt=by_prompt, bytes=size)

    async def close(self) -> None:
        await asyncio.to_thread(self.shutdown)

    def shutdown(self) -> None:
        """Write what is pending to the file and stop the writer (blocking)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            atexit.unregister(self.shutdown)
            self._jobs.put(None)
            writer.join(10.0)

    # -- memory -------------------------------------------------------------------------------

    def _drop(self, entry: Entry, *, persist: bool = True) -> None:
        """Forget an entry (the lock held)."""
        if self._entries.pop(entry.key, None) is not None:
            self._unindex(entry)
            if persist:
                self._write(_delete([entry.key]))

    def _unindex(self, entry: Entry) -> None:
        if entry.text is not None:
            self._index.remove(entry.namespace, entry.key)

    # -- the file -----------------------------------------------------------------------------

    def _write(self, job: _Job) -> None:
        if self._path is None:
            return
        if self._writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._run_writer, name="tether-cache-writer", daemon=True
                    )
                    self._writer.start()
                    atexit.register(self.shutdown)  # a script that never closes keeps its answers
        self._jobs.put(job)

    def _run_writer(self) -> None:
        assert self._path is not None
        db = _connect(self._path)
        version = _data_version(db)
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=POLL_S)
                except queue.Empty:
                    job = _IDLE
                if job is None:
                    return
                try:
                    if job is not _IDLE:
                        with db:
                            job(db)
                    now_version = _data_version(db)
                    if now_version != version:  # another process wrote to the file
                        version = now_version
                        self._apply_invalidations(db)
                except sqlite3.Error as exc:
                    log.warning("cache file %s: %s", self._path, exc)
        finally:
            db.close()

    def _apply_invalidations(self, db: sqlite3.Connection) -> None:
        rows = db.execute("SELECT id, selector, at FROM invalidations WHERE id > ? ORDER BY id",
                          (self._seen_invalidation,)).fetchall()  # fmt: skip
        for ident, selector, at in rows:
            self._seen_invalidation = ident
            chosen = Selector(**orjson.loads(selector))
            with self._lock:
                stale = [e for e in self._entries.values()
                         if e.created_at <= at and chosen.matches(e, at)]  # fmt: skip
                for entry in stale:
                    self._drop(entry, persist=False)

    def _load(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = _connect(path)
        try:
            now = time.time()
            with db:
                db.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))
            row = db.execute("SELECT max(id) FROM invalidations").fetchone()
            self._seen_invalidation = int(row[0] or 0)
            rows = db.execute(f"SELECT {_COLUMNS} FROM entries ORDER BY created_at DESC LIMIT ?",
                              (self._max_entries,)).fetchall()  # fmt: skip
        finally:
            db.close()
        for row in reversed(rows):  # oldest first: the newest end up most recently used
            entry = _entry(row)
            self._entries[entry.key] = _without_vector(entry)
            if entry.vector is not None:
                self._index.add(entry.namespace, entry.key, entry.vector)


def _idle(db: sqlite3.Connection) -> None:
    return None


_IDLE: _Job = _idle


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version != SCHEMA_VERSION:
        # A cache from another layout: start empty rather than misread it.
        db.execute("DROP TABLE IF EXISTS entries")
        db.execute("DROP TABLE IF EXISTS invalidations")
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    for statement in _DDL:
        db.execute(statement)
    return db


def _data_version(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA data_version").fetchone()
    return int(version)


def _without_vector(entry: Entry) -> Entry:
    """Memory keeps the vector once, in the graph."""
    if entry.vector is None:
        return entry
    return replace(entry, vector=None)


def _insert(entry: Entry) -> _Job:
    row = (entry.key, entry.namespace, entry.scope, entry.prompt, entry.version, entry.model,
           entry.text, entry.answer.dumps(), entry.created_at, entry.expires_at, entry.cost_usd,
           entry.latency_s, orjson.dumps(entry.tags).decode(), entry.vector_bytes())  # fmt: skip

    def job(db: sqlite3.Connection) -> None:
        db.execute(f"INSERT OR REPLACE INTO entries ({_COLUMNS}) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)  # fmt: skip

    return job


def _delete(keys: list[str]) -> _Job:
    def job(db: sqlite3.Connection) -> None:
        db.executemany("DELETE FROM entries WHERE key = ?", [(key,) for key in keys])

    return job


def _record_invalidation(selector: Selector, now: float) -> _Job:
    payload = orjson.dumps(asdict(selector)).decode()

    def job(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO invalidations (selector, at) VALUES (?, ?)", (payload, now))
        db.execute("DELETE FROM invalidations WHERE at < ?", (now - 86_400,))

    return job


def _entry(row: tuple[object, ...]) -> Entry:
    (key, namespace, scope, prompt, version, model, text, answer, created_at, expires_at,
     cost_usd, latency_s, tags, vector) = row  # fmt: skip
    assert isinstance(answer, bytes)
    assert isinstance(tags, str)
    return Entry(
        key=str(key), namespace=str(namespace), scope=str(scope),
        prompt=None if prompt is None else str(prompt),
        version=None if version is None else str(version), model=str(model),
        text=None if text is None else str(text), answer=Answer.loads(answer),
        created_at=float(created_at), expires_at=float(expires_at),  # type: ignore[arg-type]
        cost_usd=float(cost_usd), latency_s=float(latency_s),  # type: ignore[arg-type]
        tags=tuple(orjson.loads(tags)),
        vector=Entry.vector_from(vector if isinstance(vector, bytes) else None),
    )  # fmt: skip
