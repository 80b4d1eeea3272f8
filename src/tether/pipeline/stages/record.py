"""record: one request-log row for every request, whatever happened to it."""

from __future__ import annotations

import asyncio
from typing import Protocol

from tether.observe.recorder import request_record
from tether.observe.request_log import RequestLog
from tether.pipeline.context import Context
from tether.pipeline.stage import Stage


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


class Record(Stage):
    name = "record"

    def __init__(self, source: LogSource) -> None:
        self._source = source

    def finish_waits(self, ctx: Context) -> bool:
        return self._source.logging and self._source.opened_log is None

    async def finish(self, ctx: Context) -> None:
        if ctx.recorded or not self._source.logging:
            return
        ctx.recorded = True
        log = self._source.opened_log
        if log is None:  # the first request of a library client: open it off the loop
            log = await asyncio.to_thread(self._source.open_log)
        log.record(request_record(ctx))
