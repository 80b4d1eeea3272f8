"""cache: answer from the response cache when it may, file fresh answers when they come.

It runs after admit (a hit still counts against rate limits; its reservation settles at no
cost) and before route: a hit calls no model at all. A hit on a streamed request replays the
pieces the answer first went out in; `finish` files the answer once the request succeeded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tether.cache.cache import ResponseCache
from tether.pipeline.context import Context
from tether.pipeline.stage import Stage


class Cache(Stage):
    name = "cache"
    produces = True

    def __init__(self, cache: ResponseCache) -> None:
        self._cache = cache

    async def stream(self, ctx: Context) -> AsyncIterator[str]:
        entry = await self._cache.lookup(ctx)
        if entry is None or not ctx.ask.stream:
            return
        pieces = entry.answer.pieces
        if pieces is not None and len(entry.answer.choices) == 1 and ctx.contract is None:
            for piece in pieces:
                yield piece

    async def finish(self, ctx: Context) -> None:
        await self._cache.finish(ctx)

    def finish_waits(self, ctx: Context) -> bool:
        return self._cache.finish_waits(ctx)
