"""The signal worker: per-request signals computed and stored off the response path.

The record stage's `SignalObserver` hands each finished request to `submit`, which only
appends to a bounded queue (a full queue drops the request and counts it: signals never slow
or fail a request). A daemon thread computes the signals (compute_signals, the evasive score,
lexical diversity per prompt version), calls the registered listeners, and writes one row per
request, in batches. A failed write is retried a few times, then the batch is dropped and counted.

The thread works in bursts at the lowest CPU priority (observe/bursts.py): requests gather
for `flush_interval_s` (or until a batch is full), then are computed and written in one
transaction.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Sequence

from tether.observe.bursts import Bursts, let_others_run
from tether.observe.detectors import DiversityTracker, EvasiveDetector
from tether.observe.signals import SignalInput, compute_signals, signal_input
from tether.pipeline.context import Context
from tether.store.signals import Signal, SignalSet

log = logging.getLogger("tether.signals")

SignalListener = Callable[[SignalInput, list[Signal]], None]
SignalWriter = Callable[[Sequence[SignalSet]], None]


class SignalWorker:
    """`listeners` is kept as given (not copied): listeners appended to it later are called."""

    def __init__(
        self,
        write: SignalWriter,
        *,
        listeners: list[SignalListener] | None = None,
        detector: EvasiveDetector | None = None,
        diversity_window: int = 100,
        evasive_sample: float = 1.0,
        queue_size: int = 10_000,
        batch_size: int = 1024,
        flush_interval_s: float = 0.5,
        retries: int = 3,
        retry_wait_s: float = 0.5,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be at least 0")
        self._write = write
        self.listeners: list[SignalListener] = listeners if listeners is not None else []
        self._detector = detector if detector is not None else EvasiveDetector()
        self._diversity = DiversityTracker(diversity_window)
        self._evasive_sample = evasive_sample
        self._retries = retries
        self._retry_wait_s = retry_wait_s
        self._bursts = Bursts(self._handle, name="tether-signals", queue_size=queue_size,
                              batch_size=batch_size, interval_s=flush_interval_s)  # fmt: skip
        self.written = 0  # requests whose signals are stored
        self.lost = 0  # requests whose signals were dropped after their write failed every retry

    def add_listener(self, listener: SignalListener) -> None:
        self.listeners.append(listener)

    def start(self) -> None:
        self._bursts.start()

    def submit(self, item: SignalInput) -> bool:
        """Queue one request's input; never blocks. False (and counted) when the queue is full
        or the worker is closed."""
        return self._bursts.submit(item)

    @property
    def pending(self) -> int:
        return self._bursts.pending

    @property
    def dropped(self) -> int:
        """Requests refused because the queue was full or the worker closed."""
        return self._bursts.dropped

    def stats(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "dropped": self.dropped,
            "written": self.written,
            "lost": self.lost,
        }

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written (or given up); False on timeout."""
        return self._bursts.flush(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop the thread."""
        self._bursts.close(timeout)

    # -- the thread ---------------------------------------------------------------------------

    def _handle(self, batch: list[SignalInput]) -> None:
        sets: list[SignalSet] = []
        for item in batch:
            found = self._process(item)
            if found is not None:
                sets.append(found)
            let_others_run()
        self._store(sets)

    def _process(self, item: SignalInput) -> SignalSet | None:
        try:
            signals = self.signals(item)
        except Exception:
            log.exception("signal worker: cannot compute the signals of %s", item.request_id)
            return None
        for listener in tuple(self.listeners):
            try:
                listener(item, signals)
            except Exception:
                log.exception("signal listener %r failed on %s", listener, item.request_id)
        return SignalSet(
            item.request_id, item.at, item.prompt, item.version, item.model, item.key_id, signals
        )

    def signals(self, item: SignalInput) -> list[Signal]:
        """Every signal of one request; the diversity window moves on by this answer."""
        out = compute_signals(item)
        free = item.free_text
        if free is not None and sampled(item.request_id, self._evasive_sample):
            out.append(Signal("evasive", self._detector.score(free)))
        text = answer_text(item)
        if text is not None:
            found = self._diversity.add(item.prompt, item.version, text)
            for name, value in (
                ("distinct_1", found.distinct_1),
                ("distinct_2", found.distinct_2),
                ("type_token_ratio", found.type_token_ratio),
            ):
                if value is not None:
                    out.append(Signal(name, round(value, 6)))
        return out

    def _store(self, sets: list[SignalSet]) -> None:
        if not sets:
            return
        for attempt in range(self._retries + 1):
            try:
                self._write(sets)
            except Exception as exc:
                if attempt == self._retries:
                    self.lost += len(sets)
                    log.error(
                        "signal worker: the signals of %d requests dropped, the write failed: %s",
                        len(sets),
                        exc,
                    )
                    return
                log.warning("signal worker: write failed (%s); retrying", exc)
                # a closing worker still retries, without waiting
                self._bursts.stopping.wait(self._retry_wait_s * 2**attempt)
            else:
                self.written += len(sets)
                return


def answer_text(item: SignalInput) -> str | None:
    """The words of an answered request: free text as is, structured output's string values."""
    if not item.answered or item.output is None:
        return None
    if isinstance(item.output, str):
        return item.output
    parts = list(_strings(item.output))
    return " ".join(parts) if parts else None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class SignalObserver:
    """The record stage's observer that feeds the signal worker. `worker` returns the worker,
    or None while there is none (requests not logged, signals off)."""

    def __init__(self, worker: Callable[[], SignalWorker | None]) -> None:
        self._worker = worker

    def observe(self, ctx: Context) -> None:
        worker = self._worker()
        if worker is not None:
            worker.submit(signal_input(ctx))


def sampled(request_id: str, rate: float) -> bool:
    """Whether a request is in a `rate` sample: decided by its id, so reruns agree."""
    if rate >= 1.0:
        return True
    return zlib.crc32(request_id.encode()) % 10_000 < rate * 10_000
