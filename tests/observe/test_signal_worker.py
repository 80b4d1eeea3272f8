"""The signal worker: one row per request written in batches, listeners called, a full queue
dropping (and counting) rather than blocking, failed writes retried and then given up; and
signals found in the database after a real client call."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from tests.observe.test_signals import REFUSAL, make_input
from tether import Client, FakeProvider, Settings
from tether.errors import ContractViolation
from tether.observe.config import ObserveSettings
from tether.observe.signal_worker import SignalWorker
from tether.observe.signals import SignalInput
from tether.store.signals import (
    Signal,
    SignalRow,
    SignalSet,
    prompt_versions,
    signal_names,
    signal_series,
)
from tether.store.tables import request_signals


class Rows:
    def __init__(self) -> None:
        self.batches: list[list[SignalSet]] = []

    def __call__(self, sets: Sequence[SignalSet]) -> None:
        self.batches.append(list(sets))

    @property
    def sets(self) -> list[SignalSet]:
        return [found for batch in self.batches for found in batch]

    @property
    def rows(self) -> list[SignalRow]:
        return [SignalRow(*found[:6], *signal) for found in self.sets for signal in found.signals]


def test_the_worker_writes_rows_and_calls_listeners() -> None:
    written = Rows()
    seen: list[tuple[str, list[Signal]]] = []
    worker = SignalWorker(written, diversity_window=10)
    worker.add_listener(lambda item, signals: seen.append((item.request_id, signals)))

    def failing(item: SignalInput, signals: list[Signal]) -> None:
        raise RuntimeError("listener bug")

    worker.add_listener(failing)  # a failing listener harms nothing
    worker.start()
    try:
        for i in range(3):
            assert worker.submit(make_input(request_id=f"req_{i}", output=REFUSAL, text=REFUSAL))
        assert worker.flush(10)
    finally:
        worker.close()
    assert [request_id for request_id, _ in seen] == ["req_0", "req_1", "req_2"]
    names = {row.name for row in written.rows if row.request_id == "req_2"}
    assert {"latency_ms", "evasive", "distinct_1", "distinct_2", "type_token_ratio"} <= names
    evasive = [r.value for r in written.rows if r.name == "evasive"]
    assert evasive == [1.0, 1.0, 1.0]
    distinct = [r.value for r in written.rows if r.name == "distinct_1"]
    assert distinct[0] is not None
    assert distinct[2] is not None
    assert distinct[2] < distinct[0]
    assert worker.stats() == {"pending": 0, "dropped": 0, "written": 3, "lost": 0}
    assert [found.request_id for found in written.sets] == ["req_0", "req_1", "req_2"]


def test_requests_gather_into_one_batch_until_the_interval_ends() -> None:
    written = Rows()
    worker = SignalWorker(written, flush_interval_s=30)
    worker.start()
    try:
        for i in range(5):
            worker.submit(make_input(request_id=f"req_{i}"))
        assert not written.batches  # still gathering: nothing computed or written yet
        assert worker.flush(10)  # flush cuts the wait short
        assert [len(batch) for batch in written.batches] == [5]
    finally:
        worker.close()


def test_a_full_batch_is_written_without_waiting() -> None:
    written = Rows()
    worker = SignalWorker(written, flush_interval_s=30, batch_size=4)
    worker.start()
    try:
        for i in range(4):
            worker.submit(make_input(request_id=f"req_{i}"))
        for _ in range(200):
            if written.batches:
                break
            threading.Event().wait(0.05)
        assert [len(batch) for batch in written.batches] == [4]
    finally:
        worker.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_the_worker_thread_runs_at_the_lowest_priority() -> None:
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    nice: list[int] = []

    def note(sets: Sequence[SignalSet]) -> None:
        nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    worker = SignalWorker(note, flush_interval_s=0)
    worker.start()
    try:
        worker.submit(make_input())
        assert worker.flush(10)
    finally:
        worker.close()
    assert nice == [19]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # unchanged


def test_a_full_queue_drops_and_counts() -> None:
    release = threading.Event()

    def slow(sets: Sequence[SignalSet]) -> None:
        release.wait(10)

    worker = SignalWorker(slow, queue_size=2)
    worker.start()
    try:
        accepted = [worker.submit(make_input(request_id=f"req_{i}")) for i in range(10)]
        # the worker may have taken the first before the rest came: 2 or 3 accepted
        assert accepted.count(True) in (2, 3)
        assert worker.dropped == accepted.count(False)
    finally:
        release.set()
        worker.close()
    assert not worker.submit(make_input())  # closed: refused, counted
    assert worker.dropped == accepted.count(False) + 1


def test_failed_writes_are_retried_then_given_up() -> None:
    calls: list[int] = []

    def flaky(sets: Sequence[SignalSet]) -> None:
        calls.append(len(sets))
        if len(calls) < 3:
            raise OSError("database down")

    worker = SignalWorker(flaky, retries=2, retry_wait_s=0.001)
    worker.start()
    worker.submit(make_input())
    assert worker.flush(10)
    assert len(calls) == 3
    assert worker.lost == 0
    assert worker.written == calls[-1]

    def down(sets: Sequence[SignalSet]) -> None:
        raise OSError("database down")

    broken = SignalWorker(down, retries=1, retry_wait_s=0.001)
    broken.start()
    broken.submit(make_input())
    assert broken.flush(10)
    broken.close()
    worker.close()
    assert broken.lost > 0
    assert broken.written == 0


SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"enum": ["positive", "negative"]},
        "confidence": {"type": "number"},
    },
    "required": ["sentiment", "confidence"],
}


def _settings(settings: Settings, **observe: Any) -> Settings:
    # the fake embedder keeps the end-to-end tests free of the model
    fields: dict[str, Any] = {"evasive_embedder": "fake", **observe}
    return settings.model_copy(update={"observe": ObserveSettings(**fields)})


def test_signals_of_client_calls_are_in_the_database(settings: Settings) -> None:
    settings = _settings(settings)
    fake = FakeProvider(['{"sentiment": "negative", "confidence": 0.75}'])
    received: list[SignalInput] = []
    with Client(settings, providers={"fake": fake}) as client:
        client.runtime.signal_listeners.append(lambda item, signals: received.append(item))
        result = client.generate("How was it?", contract=SCHEMA)
        assert result.output == {"sentiment": "negative", "confidence": 0.75}
    engine = create_engine(settings.database)
    try:
        assert prompt_versions(engine) == [(None, None)]
        names = signal_names(engine, None, None)
        assert {"latency_ms", "cost_usd", "valid", "confidence", "enum:sentiment"} <= set(names)
        assert "evasive" not in names  # a structured answer
        (confidence,) = signal_series(engine, prompt=None, version=None, name="confidence")
        assert confidence.value == 0.75
        (label,) = signal_series(engine, prompt=None, version=None, name="enum:sentiment")
        assert label.label == "negative"
        with engine.connect() as conn:
            row = conn.execute(select(request_signals).limit(1)).one()
        assert row.request_id == received[0].request_id
        assert row.model == "fake"
    finally:
        engine.dispose()


def test_free_text_calls_get_an_evasive_score(settings: Settings) -> None:
    settings = _settings(settings, evasive_sample=1.0)
    with Client(settings, providers={"fake": FakeProvider([REFUSAL])}) as client:
        client.generate("Tell me a secret")
    engine = create_engine(settings.database)
    try:
        (evasive,) = signal_series(engine, prompt=None, version=None, name="evasive")
        assert evasive.value == 1.0
    finally:
        engine.dispose()


def test_no_signals_when_turned_off(settings: Settings) -> None:
    settings = _settings(settings, signals=False)
    with Client(settings, providers={"fake": FakeProvider(["hello"])}) as client:
        client.generate("hi")
        assert client.runtime.signal_worker is None
    engine = create_engine(settings.database)
    try:
        assert prompt_versions(engine) == []
    finally:
        engine.dispose()


def test_observers_see_requests_that_are_not_logged(settings: Settings) -> None:
    seen: list[str] = []

    class Seen:
        def observe(self, ctx: Any) -> None:
            seen.append(ctx.request_id)

    unlogged = settings.model_copy(
        update={"calls": settings.calls.model_copy(update={"record_requests": False})}
    )
    with Client(unlogged, providers={"fake": FakeProvider(["hello"])}) as client:
        client.runtime.observers.append(Seen())
        client.generate("hi")
        assert client.runtime.signal_worker is None  # no log, no signals
    assert len(seen) == 1


def test_a_broken_contract_is_invalid_and_an_error(settings: Settings) -> None:
    settings = _settings(settings)
    fake = FakeProvider(["not json", "still not json", "nope"])
    with Client(settings, providers={"fake": fake}) as client, pytest.raises(ContractViolation):
        client.generate("How was it?", contract=SCHEMA)
    engine = create_engine(settings.database)
    try:
        names = signal_names(engine, None, None)
        assert "confidence" not in names
        (valid,) = signal_series(engine, prompt=None, version=None, name="valid")
        (error,) = signal_series(engine, prompt=None, version=None, name="error")
        (repairs,) = signal_series(engine, prompt=None, version=None, name="repairs")
        assert (valid.value, error.value) == (0.0, 1.0)
        assert repairs.value == settings.max_repairs
    finally:
        engine.dispose()


def test_the_evasive_sample_is_chosen_by_request_id() -> None:
    from tether.observe.signal_worker import sampled

    ids = [f"req_{n:08x}" for n in range(5000)]
    chosen = [i for i in ids if sampled(i, 0.1)]
    assert 400 < len(chosen) < 600
    assert chosen == [i for i in ids if sampled(i, 0.1)]  # the same ones every time
    assert all(sampled(i, 1.0) for i in ids[:10])
    assert not any(sampled(i, 0.0) for i in ids)
