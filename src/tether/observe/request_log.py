"""The durable request log, written off the request path.

`record()` only appends to an in-memory queue. A writer thread inserts rows in batches; when the
database is unavailable a batch goes to a bounded on-disk spool (JSON lines) and is replayed
when the database answers again. Inserts ignore ids already stored, so a replayed batch never
duplicates a row. `close()` drains the queue and the spool before returning.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from tether.store.tables import requests

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

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _to_json(record: RequestRecord) -> str:
    data = record.row()
    data["at"] = record.at.isoformat()
    return json.dumps(data, ensure_ascii=False)


def _from_json(line: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    data["at"] = datetime.fromisoformat(data["at"])
    return data


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
        self._spool = spool_dir
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._spool_max = spool_max_bytes
        self._retention = retention_days
        self._queue: deque[RequestRecord] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self.dropped = 0  # rows lost because the spool was full
        self.database_ok = True
        self._thread = threading.Thread(target=self._run, name="tether-request-log", daemon=True)
        self._spool.mkdir(parents=True, exist_ok=True)
        self._insert = self._insert_ignoring_duplicates()

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
        last_retention = 0.0
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self._write_queue()
            if self.database_ok or self._spool_files():
                self._replay_spool()
            if self._retention and time.monotonic() - last_retention > 3600:
                last_retention = time.monotonic()
                self._apply_retention()
        self._write_queue()

    def _write_queue(self) -> None:
        while self._queue:
            with self._idle:
                self._busy = True
            batch: list[RequestRecord] = []
            while self._queue and len(batch) < self._batch_size:
                batch.append(self._queue.popleft())
            try:
                self._store([r.row() for r in batch])
                self.database_ok = True
            except SQLAlchemyError as exc:
                self._database_down(exc)
                self._to_spool(batch)
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()
        with self._idle:
            self._idle.notify_all()

    def _store(self, rows: Sequence[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(self._insert, list(rows))

    def _insert_ignoring_duplicates(self) -> Any:
        dialect = self._engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(requests).on_conflict_do_nothing(index_elements=["id"])
        if dialect == "sqlite":
            return sqlite.insert(requests).on_conflict_do_nothing(index_elements=["id"])
        return insert(requests)

    def _database_down(self, exc: SQLAlchemyError) -> None:
        if self.database_ok:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[:1]
            log.warning("request log: database unavailable, spooling to disk: %s", reason)
        self.database_ok = False

    # -- spool --------------------------------------------------------------------------------

    def _spool_files(self) -> list[Path]:
        return sorted(self._spool.glob("*.jsonl"))

    def _to_spool(self, batch: Sequence[RequestRecord]) -> None:
        files = self._spool_files()
        used = sum(f.stat().st_size for f in files)
        text = "".join(_to_json(r) + "\n" for r in batch)
        while files and used + len(text) > self._spool_max:
            oldest = files.pop(0)  # bounded: the oldest rows give way to the newest
            self.dropped += sum(1 for _ in oldest.open())
            used -= oldest.stat().st_size
            oldest.unlink()
            log.error("request log: spool full, dropped %s", oldest.name)
        name = self._spool / f"{time.time_ns()}-{os.getpid()}.jsonl"
        partial = name.with_suffix(".tmp")
        with partial.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(name)

    def _replay_spool(self) -> None:
        for file in self._spool_files():
            rows = [_from_json(line) for line in file.read_text("utf-8").splitlines() if line]
            try:
                for start in range(0, len(rows), self._batch_size):
                    self._store(rows[start : start + self._batch_size])
            except SQLAlchemyError as exc:
                self._database_down(exc)
                return
            file.unlink()
            if not self.database_ok:
                log.warning("request log: database back, spool replayed")
            self.database_ok = True

    def _apply_retention(self) -> None:
        assert self._retention is not None
        cutoff = datetime.now(UTC) - timedelta(days=self._retention)
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(requests).where(requests.c.at < cutoff))
        except SQLAlchemyError as exc:
            self._database_down(exc)
