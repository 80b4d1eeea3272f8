"""Limits shared through Redis, for several gateway replicas: every reserve, extend and
settle is one Lua script (redis_scripts.py), so it is atomic across replicas.

Windows run on Redis server time, so replicas with skewed clocks agree on them. Budget period
buckets ("2026-12") are named here, from this process's clock (`clock`, injectable for tests):
a skew of a few seconds only decides which side of midnight a request near it counts on.

A script touches keys of several scopes, so on Redis Cluster they must share a hash slot: give
a prefix in braces (`key_prefix = "{tether}"`), which puts every key of the store in one slot.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeout

from tether.costs.limits.base import (
    NANO,
    Budget,
    Claim,
    LimitStore,
    Reservation,
    nano,
)
from tether.costs.limits.periods import bucket, period_end
from tether.costs.limits.quota import Allowance, Quota, tightest
from tether.costs.limits.redis_scripts import HOLD, SETTLE
from tether.costs.limits.refusals import budget_refused, rate_refused
from tether.errors import DatabaseUnavailable

BUDGET_GRACE_S = 86_400  # a budget's counters outlive its period by a day, for reports
RECORD_TTL_S = 86_400  # an unsettled reservation is forgotten (its hold kept) after a day
MAX_CONNECTIONS = 64
POOL_WAIT_S = 5.0
TIMEOUT_S = 5.0
log = logging.getLogger("tether.limits")


class RedisLimitStore(LimitStore):
    name = "redis"

    def __init__(
        self,
        client: Redis,
        *,
        key_prefix: str = "tether",
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._redis = client
        self._prefix = key_prefix
        # None: windows on server time, buckets on time.time; a test clock drives both.
        self._test_clock = clock
        self._hold = client.register_script(HOLD)
        self._settle = client.register_script(SETTLE)

    @classmethod
    def open(
        cls,
        url: str,
        *,
        key_prefix: str = "tether",
        clock: Callable[[], float] | None = None,
    ) -> RedisLimitStore:
        # A burst waits for a free connection (up to POOL_WAIT_S) instead of failing at once.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=POOL_WAIT_S, socket_timeout=TIMEOUT_S
        )
        return cls(Redis(connection_pool=pool), key_prefix=key_prefix, clock=clock)

    def _now(self) -> float:
        return self._test_clock() if self._test_clock is not None else time.time()

    async def reserve(self, claim: Claim) -> Reservation:
        now = self._now()
        reservation = Reservation(
            uuid.uuid4().hex,
            claim,
            claim.tokens,
            claim.cost_usd,
            buckets={b.scope: bucket(b.period, now) for b in claim.budgets},
        )
        if not claim.empty:  # no limits: no Redis call, so no stall can delay it
            await self._run_hold(
                reservation, "reserve", reservation.id, claim.tokens, nano(claim.cost_usd), now
            )
        return reservation

    async def extend(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        if reservation.settled:
            raise ValueError(f"reservation {reservation.id} is settled; reserve anew")
        member = f"{reservation.id}:{uuid.uuid4().hex[:8]}"
        if not reservation.claim.empty:
            await self._run_hold(reservation, "extend", member, tokens, nano(cost_usd), self._now())
        reservation.tokens += tokens
        reservation.cost_usd += cost_usd

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        if reservation.settled or reservation.claim.empty:
            reservation.settled = True
            return
        claim = reservation.claim
        keys = [self._key("res", reservation.id)]
        token_rates = [r for r in claim.rates if r.unit == "tokens"]
        for rate in token_rates:
            keys += [self._key("tpm", rate.scope), self._key("tpm", rate.scope, "n")]
        keys += [self._budget_key(b, reservation) for b in claim.budgets]
        await self._call(self._settle, keys, [max(tokens, 0), nano(cost_usd), len(token_rates)])
        reservation.settled = True

    async def spent(self, budget: Budget) -> float:
        key = self._key("budget", budget.scope, bucket(budget.period, self._now()))
        try:
            spent, held = await self._redis.hmget(key, ["spent", "held"])
        except (RedisConnectionError, RedisTimeout) as exc:
            raise _unavailable(exc) from None
        return (int(spent or 0) + int(held or 0)) / NANO

    async def close(self) -> None:
        await self._redis.aclose(close_connection_pool=True)

    async def _run_hold(
        self, reservation: Reservation, mode: str, member: str, tokens: int, cost: int, now: float
    ) -> None:
        claim = reservation.claim
        keys = [self._key("res", reservation.id)]
        args: list[Any] = [
            "" if self._test_clock is None else int(now * 1000),
            reservation.id,
            member,
            tokens,
            cost,
            RECORD_TTL_S * 1000,
            mode,
            len(claim.rates),
        ]
        for rate in claim.rates:
            args += ["r" if rate.unit == "requests" else "t", rate.per_minute]
            keys.append(self._key("rpm" if rate.unit == "requests" else "tpm", rate.scope))
            if rate.unit == "tokens":
                keys.append(self._key("tpm", rate.scope, "n"))
        args.append(len(claim.budgets))
        for budget in claim.budgets:
            end = period_end(budget.period, now)
            expire_at = 0 if end is None else int((end + BUDGET_GRACE_S) * 1000)
            args += [nano(budget.limit_usd), expire_at]
            keys.append(self._budget_key(budget, reservation))
        answer = await self._call(self._hold, keys, args)
        if answer[0] == 1:
            if claim.rates:
                reservation.quota = _quota(claim, answer[1:])
            return
        kind = _text(answer[1])
        if kind == "rate":
            rate = claim.rates[int(answer[2]) - 1]
            raise rate_refused(
                rate,
                asked=1 if rate.unit == "requests" else tokens,
                retry_after_s=int(answer[3]) / 1000,
                quota=_quota(claim, answer[4:]),
            )
        if kind == "budget":
            budget = claim.budgets[int(answer[2]) - 1]
            raise budget_refused(
                budget, reservation.buckets[budget.scope], spent_nano=int(answer[3])
            )
        raise ValueError(f"reservation {reservation.id} is settled; reserve anew")

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> list[Any]:
        try:
            answer = await script(keys=keys, args=args)
        except (RedisConnectionError, RedisTimeout) as exc:
            raise _unavailable(exc) from None
        return answer if isinstance(answer, list) else [answer]

    def _key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    def _budget_key(self, budget: Budget, reservation: Reservation) -> str:
        return self._key("budget", budget.scope, reservation.buckets[budget.scope])


def _quota(claim: Claim, pairs: list[Any]) -> Quota:
    """The script's (remaining, reset ms) pair per rate of the claim, as one Quota."""
    return tightest(
        [
            (rate.unit, Allowance(rate.per_minute, int(pairs[2 * i]), int(pairs[2 * i + 1]) / 1000))
            for i, rate in enumerate(claim.rates)
        ]
    )


def _unavailable(exc: Exception) -> DatabaseUnavailable:
    # The client's message names hosts and ports: it goes to the log, not to the caller.
    log.warning("redis limit store unavailable: %s", exc)
    return DatabaseUnavailable("redis limit store", "Redis did not answer")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
