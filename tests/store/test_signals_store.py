"""Signals as stored: one row per request, read as one series per prompt version and name,
oldest first, NULL prompts matched as such; the pairs and names that have signals; hostile
names and labels kept as they were."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from tether.store import open_database
from tether.store.signals import (
    Signal,
    SignalRow,
    SignalSet,
    add_signal_rows,
    add_signals,
    prompt_versions,
    signal_names,
    signal_series,
    signal_values,
)
from tether.store.tables import request_signals

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


def _row(i: int, name: str = "latency_ms", prompt: str | None = "qa", **kw: object) -> SignalRow:
    fields: dict[str, object] = {
        "request_id": f"req_{i}",
        "at": T0 + timedelta(minutes=i),
        "prompt": prompt,
        "version": "v1" if prompt is not None else None,
        "model": "fake",
        "key_id": None,
        "name": name,
        "value": float(i),
        "label": None,
    }
    fields.update(kw)
    return SignalRow(**fields)  # type: ignore[arg-type]


def test_a_series_is_oldest_first_within_its_bounds(engine: Engine) -> None:
    add_signal_rows(engine, [_row(i) for i in (3, 1, 2, 0)] + [_row(9, name="cost_usd")])
    add_signal_rows(engine, [_row(5, version="v2"), _row(6, prompt=None)])

    points = signal_series(engine, prompt="qa", version="v1", name="latency_ms")
    assert [p.value for p in points] == [0.0, 1.0, 2.0, 3.0]
    assert points[0].at == T0
    assert points[0].at.tzinfo is not None

    bounded = signal_series(
        engine,
        prompt="qa",
        version="v1",
        name="latency_ms",
        since=T0 + timedelta(minutes=1),
        until=(T0 + timedelta(minutes=3)).replace(tzinfo=None),  # naive bounds are UTC
    )
    assert [p.value for p in bounded] == [1.0, 2.0]
    latest = signal_series(engine, prompt="qa", version="v1", name="latency_ms", limit=2)
    assert [p.value for p in latest] == [2.0, 3.0]  # the newest two, oldest first

    raw = signal_series(engine, prompt=None, version=None, name="latency_ms")
    assert [p.value for p in raw] == [6.0]


def test_labels_names_and_pairs(engine: Engine) -> None:
    add_signal_rows(
        engine,
        [
            _row(0, name="enum:sentiment", value=None, label="pos"),
            _row(1, name="error", value=0.0),
            _row(2, name="error", prompt=None),
            _row(3, name="error", version="v2"),
        ],
    )
    (point,) = signal_series(engine, prompt="qa", version="v1", name="enum:sentiment")
    assert (point.value, point.label) == (None, "pos")
    assert signal_names(engine, "qa", "v1") == ["enum:sentiment", "error"]
    assert signal_names(engine, None, None) == ["error"]
    assert prompt_versions(engine) == [(None, None), ("qa", "v1"), ("qa", "v2")]
    assert prompt_versions(engine, T0 + timedelta(minutes=3)) == [("qa", "v2")]


def test_nothing_to_add_writes_nothing(engine: Engine) -> None:
    add_signals(engine, [])
    assert prompt_versions(engine) == []


def test_a_request_is_one_row_and_hostile_names_round_trip(engine: Engine) -> None:
    odd = ['enum:a "quoted" key', "enum:with space", "enum:nul\x00here", 'enum:["x"]', "enum:é"]
    signals = [Signal("latency_ms", 12.5), Signal("confidence", None)]
    signals += [Signal(name, label=f"{name}\x00 label") for name in odd]
    add_signals(engine, [SignalSet("req_1", T0, "qa", "v1", "fake", "k1", signals)])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(request_signals)).scalar_one() == 1
    assert signal_names(engine, "qa", "v1") == sorted(["latency_ms", "confidence", *odd])
    for name in odd:
        (point,) = signal_series(engine, prompt="qa", version="v1", name=name)
        assert point.label == f"{name}\x00 label"
    (null,) = signal_series(engine, prompt="qa", version="v1", name="confidence")
    assert null.value is None
    assert signal_series(engine, prompt="qa", version="v1", name="enum:a") == []  # no prefix match


def test_signal_values_narrow_by_prompt_and_request(engine: Engine) -> None:
    add_signal_rows(engine, [_row(i, name="canary", value=float(i % 2)) for i in range(4)])
    add_signal_rows(engine, [_row(9, name="canary", prompt="other", value=1.0)])
    assert signal_values(engine, "canary", prompt="qa") == [
        ("req_0", 0.0), ("req_1", 1.0), ("req_2", 0.0), ("req_3", 1.0)
    ]  # fmt: skip
    assert signal_values(engine, "canary", request_ids=["req_3", "req_9"]) == [
        ("req_3", 1.0), ("req_9", 1.0)
    ]  # fmt: skip
    assert signal_values(engine, "canary", since=T0 + timedelta(minutes=3)) == [
        ("req_3", 1.0), ("req_9", 1.0)
    ]  # fmt: skip
