"""Work done off the request path, in bursts, by a thread at the lowest CPU priority.

The request path only appends to a bounded queue (a full queue drops the item and counts it:
observability never slows or fails a request). The thread lets items gather for `interval_s`
(or until a batch is full), then hands them over in one batch, so the requests in between
share the CPU with nobody and fixed costs (a transaction, an export) are paid once a batch.
On Linux the thread runs at the lowest priority: on a busy machine the event loop comes
first, and the work waits (or, once the queue is full, is dropped and counted). Handlers call
`let_others_run()` between items, so a burst holds the interpreter lock for one item at a
time, not for the whole batch.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

log = logging.getLogger("tether.observe")

T = TypeVar("T")


class Bursts(Generic[T]):
    """`handle(batch)` runs on the thread for each batch; what it raises is logged."""

    def __init__(
        self,
        handle: Callable[[list[T]], None],
        *,
        name: str,
        queue_size: int = 10_000,
        batch_size: int = 1024,
        interval_s: float = 0.5,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or interval_s < 0:
            raise ValueError("queue_size and batch_size must be at least 1, interval_s at least 0")
        self._handle = handle
        self._name = name
        self._queue: deque[T] = deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._interval = interval_s
        self._hurry = False  # flush() or close(): hand over what is queued now
        self._cv = threading.Condition()
        self._busy = False
        self._stopping = threading.Event()
        self.dropped = 0  # items refused because the queue was full or the thread closed
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Queue one item; never blocks. False (and counted) when the queue is full or the
        thread is closed."""
        with self._cv:
            if len(self._queue) >= self._queue_size or self._stopping.is_set():
                self.dropped += 1
                return False
            self._queue.append(item)
            if len(self._queue) in (1, self._batch_size):  # the thread waits for these two
                self._cv.notify()
        return True

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def stopping(self) -> threading.Event:
        """Set once `close` is called (a handler's retries need not wait any more)."""
        return self._stopping

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is handled; False on timeout."""
        with self._cv:
            self._hurry = True
            self._cv.notify_all()
            return self._cv.wait_for(lambda: not self._queue and not self._busy, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Handle what is queued, then stop the thread."""
        with self._cv:
            self._stopping.set()
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: %d items not handled at close", self._name, self.pending)

    def _run(self) -> None:
        lowest_priority()
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                self._handle(batch)
            except Exception:
                log.exception("%s: a batch of %d failed", self._name, len(batch))
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _take(self) -> list[T] | None:
        with self._cv:
            self._cv.wait_for(lambda: bool(self._queue) or self._stopping.is_set())
            if not self._queue:
                return None
            self._cv.wait_for(self._batch_ready, self._interval)
            self._hurry = False
            count = min(len(self._queue), self._batch_size)
            batch = [self._queue.popleft() for _ in range(count)]
            self._busy = True
            return batch

    def _batch_ready(self) -> bool:
        return len(self._queue) >= self._batch_size or self._hurry or self._stopping.is_set()


def let_others_run() -> None:
    """Release the GIL for a moment: a burst hands the interpreter to a waiting event loop
    between items, rather than after Python's 5 ms switch interval."""
    time.sleep(0)


def lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux: a thread's nice value is its
    own); elsewhere, or where the system refuses, it keeps the process's."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError as exc:
        log.debug("cannot lower the priority of %s: %s", threading.current_thread().name, exc)
