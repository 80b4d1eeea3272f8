"""The stage interface: one step of the request path over the request context."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tether.pipeline.context import Context


class Stage:
    """`run` does the stage's work before the answer exists; it is skipped once the request is
    answered (a cache hit, a rule's answer) or has failed. `finish` runs for every request,
    after the answer or the failure, whatever happened: recording and settling live there.

    The one stage that produces the answer overrides `stream` instead of `run`: it yields the
    text it may send before the whole answer is known (free text, when the caller streams)."""

    name = "stage"
    produces = False

    async def run(self, ctx: Context) -> None:
        return None

    def stream(self, ctx: Context) -> AsyncIterator[str]:
        raise NotImplementedError(f"{self.name} does not produce answers")

    async def finish(self, ctx: Context) -> None:
        return None

    def finish_waits(self, ctx: Context) -> bool:
        """Whether `finish` may suspend for this request (I/O): the chain then shields it
        from a caller's cancellation."""
        return False
