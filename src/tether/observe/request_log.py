"""The durable request log, written off the request path.

`record()` only appends to an in-memory queue. A writer thread inserts rows in batches; when the
database is unavailable a batch goes to a bounded on-disk spool (JSON lines) and is replayed
when the database answers again. Inserts ignore ids already stored, so a replayed batch never
duplicates a row. `close()` drains the queue and the spool before returning.

A row the database refuses for good (a value it cannot store) must not hold up the others: the
failed batch is retried row by row, the refused rows go to the dead-letter file, the rest are
stored. Spooled rows are replayed under the same rule, so a poisoned spool file still drains.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import SQLAlchemyError

from tether.observe.spool import Spool
from tether.store.dialect import insert_ignoring_duplicates, is_postgresql
from tether.store.failures import is_bad_value, short_reason
from tether.store.tables import request_signals, requests

log = logging.getLogger("tether.request_log")


@dataclass(frozen=True)
class RequestRecord:
    id: str
    at: datetime
    endpoint: str
    key_id: str | None
    model: str | None
    provider: str | None
    upstream_model: str | None
    prompt: str | None
    prompt_version: str | None
    status: int
    error: str | None
    stream: bool
    messages: str  # JSON
    response: str | None
    output: str | None  # JSON
    contract: str | None
    valid: bool | None
    attempts: str | None  # JSON
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    route: str | None = None  # JSON
    cache: str | None = None  # the cache decision's kind; None: the cache was not consulted
    cache_saved_usd: float | None = None  # a hit's: what the original call cost
    cache_saved_s: float | None = None  # a hit's: how much sooner the answer came
    cache_detail: str | None = None  # JSON: the whole decision

    def row(self) -> dict[str, Any]:
        return asdict(self)


# Columns a row spooled by an older version may lack: a batch's rows must share their keys.
_LATER_COLUMNS = {f.name: f.default for f in fields(RequestRecord) if f.default is not MISSING}


class RequestLog:
    def __init__(
        self,
        engine: Engine,
        *,
        spool_dir: Path,
        batch_size: int = 256,
        flush_interval_s: float = 0.2,
        spool_max_bytes: int = 256 * 1024 * 1024,
        retention_days: int | None = None,
    ) -> None:
        self._engine = engine
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._retention = retention_days
        self._queue: deque[RequestRecord] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self.database_ok = True
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self._thread = threading.Thread(target=self._run, name="tether-request-log", daemon=True)
        self._insert = insert_ignoring_duplicates(requests, engine, ["id"])

    def start(self) -> None:
        self._thread.start()

    def record(self, record: RequestRecord) -> None:
        """Queue a row; never blocks, never raises."""
        self._queue.append(record)
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def dropped(self) -> int:
        return self.spool.dropped

    def stats(self) -> dict[str, int]:
        """Counters from memory, for health checks: never touches the database or the disk."""
        return {
            "pending": self.pending,
            "spooled": self.spool.rows,
            "quarantined": self.spool.quarantined,
            "dropped": self.spool.dropped,
        }

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued row is stored (or spooled); True if it got there in time."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._idle:
            while self._queue or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wake.set()
                self._idle.wait(min(remaining, 0.05))
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._write_queue()  # anything left if the thread could not finish
        self._replay_spool()

    # -- writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        # None: at once. Not 0.0: the monotonic clock may start at boot, an hour not yet gone.
        last_retention: float | None = None
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._write_queue()
                if self.database_ok or self.spool.rows:
                    self._replay_spool()
                due = last_retention is None or time.monotonic() - last_retention > 3600
                if self._retention and due:
                    last_retention = time.monotonic()
                    self.apply_retention()
            except Exception:
                # A bug here must not end the thread: every later row would pile up in memory.
                log.exception("request log: writer error")
        self._write_queue()

    def _write_queue(self) -> None:
        while self._queue:
            with self._idle:
                self._busy = True
            batch: list[RequestRecord] = []
            while self._queue and len(batch) < self._batch_size:
                batch.append(self._queue.popleft())
            try:
                unsaved = self._save([r.row() for r in batch])
                if unsaved:
                    self.spool.write(unsaved)
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()
        with self._idle:
            self._idle.notify_all()

    def _save(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store rows, quarantining any the database refuses for good; return the rows left
        unstored because the database is unavailable (they belong in the spool)."""
        try:
            self._store(rows)
        except Exception as exc:
            if not is_bad_value(exc):
                self._database_down(exc)
                return list(rows)
        else:
            self._database_up()
            return []
        # One bad value fails the whole batch: find it by storing the rows one at a time.
        for done, row in enumerate(rows):
            try:
                self._store([row])
            except Exception as exc:
                if not is_bad_value(exc):
                    self._database_down(exc)
                    return list(rows[done:])
                self.spool.quarantine(row, f"{type(exc).__name__}: {short_reason(exc)}")
        self._database_up()
        return []

    def _store(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._insert, list(rows))

    def _database_down(self, exc: BaseException) -> None:
        if self.database_ok:
            log.warning("request log: database unavailable, spooling: %s", short_reason(exc))
        self.database_ok = False

    def _database_up(self) -> None:
        if not self.database_ok:
            log.warning("request log: database back")
        self.database_ok = True

    def _replay_spool(self) -> None:
        for path in self.spool.files():
            spooled = self.spool.read(path)
            for line in spooled.unreadable:
                self.spool.quarantine(line, "unreadable spool line")
            rows = [{**_LATER_COLUMNS, **row} for row in spooled.rows]
            for start in range(0, len(rows), self._batch_size):
                batch = rows[start : start + self._batch_size]
                unsaved = self._save(batch)
                if unsaved:
                    if start or spooled.unreadable or len(unsaved) < len(batch):
                        # Keep only what is still waiting, so nothing is quarantined twice.
                        self.spool.done(spooled, unsaved + rows[start + len(batch) :])
                    return
            self.spool.done(spooled, [])

    def apply_retention(self) -> None:
        """Delete requests and their signals older than the retention period (the writer does
        it hourly; nothing without one): signals would outlive their requests, and grow
        without end."""
        if not self._retention:
            return
        cutoff = datetime.now(UTC) - timedelta(days=self._retention)
        try:
            with self._engine.begin() as conn:
                if is_postgresql(conn):
                    # A large backlog may take longer than a request's statement timeout.
                    conn.execute(text("SET LOCAL statement_timeout = 0"))
                conn.execute(delete(requests).where(requests.c.at < cutoff))
                conn.execute(delete(request_signals).where(request_signals.c.at < cutoff))
        except SQLAlchemyError as exc:
            self._database_down(exc)
