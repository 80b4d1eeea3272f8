"""Retention: with `[server] log_retention_days`, the request log's hourly clean-up deletes
the signals older than the cutoff along with the requests; recent ones stay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from tests.observe.test_input_drift import record
from tether.observe.request_log import RequestLog
from tether.store.engine import open_database
from tether.store.signals import SignalRow

try:  # one stored row per request: single signals go through add_signal_rows
    from tether.store.signals import add_signal_rows as store_signals
except ImportError:  # one stored row per signal
    from tether.store.signals import add_signals as store_signals  # type: ignore[assignment]
from tether.store.tables import request_signals, requests

NOW = datetime.now(UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'tether.db'}")
    yield db
    db.dispose()


def signals(request_id: str, at: datetime) -> list[SignalRow]:
    return [SignalRow(request_id=request_id, at=at, prompt="support", version="1.0.0",
                      model="fake", key_id=None, name=name, value=1.0, label=None)
            for name in ("latency_ms", "evasive")]  # fmt: skip


def seed(engine: Engine, ages: dict[str, timedelta]) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(requests), [record(i, NOW - age, "hi").row() for i, age in ages.items()]
        )
    for request_id, age in ages.items():
        store_signals(engine, signals(request_id, NOW - age))


def stored(engine: Engine) -> tuple[list[str], list[str]]:
    with engine.connect() as conn:
        kept = sorted(conn.execute(select(request_signals.c.request_id).distinct()).scalars())
        rows = sorted(conn.execute(select(requests.c.id)).scalars())
    return kept, rows


def test_old_signals_go_and_recent_ones_stay(engine: Engine, tmp_path: Path) -> None:
    seed(engine, {"old": timedelta(days=31), "older": timedelta(days=400),
                  "recent": timedelta(days=29), "new": timedelta(minutes=1)})  # fmt: skip
    log = RequestLog(engine, spool_dir=tmp_path / "spool", retention_days=30)
    log.apply_retention()
    assert stored(engine) == (["new", "recent"], ["new", "recent"])


def test_without_retention_nothing_is_deleted(engine: Engine, tmp_path: Path) -> None:
    seed(engine, {"old": timedelta(days=3000), "new": timedelta(minutes=1)})
    RequestLog(engine, spool_dir=tmp_path / "spool").apply_retention()
    assert stored(engine) == (["new", "old"], ["new", "old"])


def test_the_writer_applies_retention_when_it_starts(engine: Engine, tmp_path: Path) -> None:
    seed(engine, {"old": timedelta(days=10), "new": timedelta(minutes=1)})
    log = RequestLog(engine, spool_dir=tmp_path / "spool", retention_days=7,
                     flush_interval_s=0.01)  # fmt: skip
    log.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while stored(engine)[0] != ["new"] and datetime.now(UTC) < deadline:
            log.flush(0.1)
    finally:
        log.close()
    assert stored(engine) == (["new"], ["new"])
