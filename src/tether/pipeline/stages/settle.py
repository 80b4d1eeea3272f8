"""settle: replace what the request held against its limits by what it was billed."""

from __future__ import annotations

from tether.costs.accounting import charged
from tether.costs.limits.base import LimitStore
from tether.pipeline.context import Context
from tether.pipeline.stage import Stage


class Settle(Stage):
    name = "settle"

    def __init__(self, store: LimitStore) -> None:
        self._store = store

    def finish_waits(self, ctx: Context) -> bool:
        return ctx.reservation is not None and not ctx.reservation.settled

    async def finish(self, ctx: Context) -> None:
        reservation = ctx.reservation
        if reservation is None or reservation.settled:
            return
        usage, cost = charged(tuple(ctx.attempts))
        await self._store.settle(reservation, tokens=usage.total_tokens, cost_usd=cost)
