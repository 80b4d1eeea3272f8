"""record: one request-log row for every request, whatever happened to it; then the observers
(signals, metrics, traces) see the finished request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from tether.observe.recorder import request_record
from tether.observe.request_log import RequestLog
from tether.pipeline.context import Context
from tether.pipeline.stage import Stage

logger = logging.getLogger("tether.pipeline")


class LogSource(Protocol):
    @property
    def opened_log(self) -> RequestLog | None:
        """The log if it is open already (None otherwise)."""
        ...

    @property
    def logging(self) -> bool:
        """Whether requests are recorded at all."""
        ...

    def open_log(self) -> RequestLog:
        """Open the log (the database, migrated, and the writer thread): blocking."""
        ...


class Observer(Protocol):
    def observe(self, ctx: Context) -> None:
        """See one finished request, once, after its row is queued (if requests are logged).
        Called on the event loop: cheap, never blocking; anything slow goes to a thread."""
        ...


class Record(Stage):
    name = "record"

    def __init__(self, source: LogSource, observers: Sequence[Observer] = ()) -> None:
        self._source = source
        # kept as given, not copied: observers the runtime adds to its list later are seen
        self._observers = observers

    def finish_waits(self, ctx: Context) -> bool:
        return self._source.logging and self._source.opened_log is None

    async def finish(self, ctx: Context) -> None:
        if ctx.recorded:
            return
        if self._source.logging:
            ctx.recorded = True
            log = self._source.opened_log
            if log is None:  # the first request of a library client: open it off the loop
                log = await asyncio.to_thread(self._source.open_log)
            log.record(request_record(ctx))
        self._notify(ctx)

    def _notify(self, ctx: Context) -> None:
        for observer in tuple(self._observers):
            try:
                observer.observe(ctx)
            except Exception:  # an observer never fails a request
                logger.exception("observer %r failed on %s", observer, ctx.request_id)
