"""The pipeline: an ordered chain of stages run over one request context.

Every caller runs it the same way: `stream` yields text as it may be sent (only free text that
the caller asked to stream); `run` drives it to the end. Either way, when it returns or raises,
the request is finished: every stage's `finish` ran (the row is recorded, the reservation
settled), also when the caller went away mid-stream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import anyio

from tether.errors import TetherError
from tether.pipeline.context import CLIENT_CLOSED, Context
from tether.pipeline.stage import Stage

log = logging.getLogger("tether.pipeline")


class ClientClosed(Exception):
    """The caller stopped reading before the answer was complete."""


class Pipeline:
    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        # Only the stages that do something at each step are visited (the hot path is short).
        self._working = tuple(s for s in self.stages if s.produces or _overrides(s, "run"))
        self._finishing = tuple(s for s in self.stages if _overrides(s, "finish"))

    async def stream(self, ctx: Context) -> AsyncIterator[str]:
        try:
            for stage in self._working:
                if ctx.done:
                    break
                if stage.produces:
                    async for piece in stage.stream(ctx):
                        yield piece
                else:
                    await stage.run(ctx)
        except GeneratorExit:
            ctx.fail(ClientClosed("client closed the stream"), CLIENT_CLOSED)
            raise
        except BaseException as exc:
            ctx.fail(exc)
            raise
        finally:
            await self._finish(ctx)

    async def run(self, ctx: Context) -> Context:
        """The whole request (what `stream` does, without a generator per call: the common
        case stays short)."""
        try:
            for stage in self._working:
                if ctx.done:
                    break
                if stage.produces:
                    async for _ in stage.stream(ctx):
                        pass
                else:
                    await stage.run(ctx)
        except BaseException as exc:
            ctx.fail(exc)
            raise
        finally:
            await self._finish(ctx)
        return ctx

    async def _finish(self, ctx: Context) -> None:
        for stage in self._finishing:
            if stage.finish_waits(ctx):
                break
        else:
            await self._finish_all(ctx)  # nothing will suspend: nothing to shield
            return
        # Shielded: a caller cancelled mid-request still gets its row and its settlement.
        with anyio.CancelScope(shield=True):
            await self._finish_all(ctx)

    async def _finish_all(self, ctx: Context) -> None:
        for stage in self._finishing:
            try:
                await stage.finish(ctx)
            except TetherError as exc:
                log.warning("%s could not finish %s: %s", stage.name, ctx.request_id, exc)
            except Exception:
                log.exception("%s could not finish %s", stage.name, ctx.request_id)


def _overrides(stage: Stage, method: str) -> bool:
    return getattr(type(stage), method) is not getattr(Stage, method)
