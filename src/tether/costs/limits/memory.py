"""Limits kept in one process: sliding one-minute windows of stamps, budgets per (scope,
period bucket), all behind one lock. Right for a single replica; several replicas each keep
their own counts, so they need the database or Redis store."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from tether.costs.limits.base import (
    NANO,
    WINDOW_S,
    Budget,
    Claim,
    LimitStore,
    RateLimit,
    Reservation,
    nano,
)
from tether.costs.limits.periods import bucket
from tether.costs.limits.quota import Allowance, Quota, tightest
from tether.costs.limits.refusals import budget_refused, rate_refused, room_needed


@dataclass
class _Use:
    at: float
    tokens: int  # corrected in place when the reservation settles


@dataclass
class _Account:
    spent: int = 0  # nano-dollars
    held: int = 0


@dataclass
class _Held:
    nano: int
    tokens: int
    last: list[_Use] = field(default_factory=list)  # the latest attempt's uses, one per tpm


class MemoryLimitStore(LimitStore):
    name = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # epoch seconds; tests move it
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, deque[_Use]] = {}
        self._accounts: dict[tuple[str, str], _Account] = {}
        self._open: dict[str, _Held] = {}

    async def reserve(self, claim: Claim) -> Reservation:
        now = self._clock()
        cost = nano(claim.cost_usd)
        buckets = {b.scope: bucket(b.period, now) for b in claim.budgets}
        with self._lock:
            self._check(claim.rates, claim.tokens, now, count_request=True)
            self._check_budgets(claim.budgets, buckets, cost)
            reservation_id = uuid.uuid4().hex
            held = _Held(cost, claim.tokens)
            self._take(claim, buckets, held, claim.tokens, cost, now, count_request=True)
            self._open[reservation_id] = held
            quota = self._quota(claim.rates, now)
        return Reservation(
            reservation_id, claim, claim.tokens, claim.cost_usd, buckets=buckets, quota=quota
        )

    async def extend(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        now = self._clock()
        cost = nano(cost_usd)
        claim = reservation.claim
        with self._lock:
            held = self._open.get(reservation.id)
            if held is None or reservation.settled:
                raise ValueError(f"reservation {reservation.id} is settled; reserve anew")
            self._check(claim.rates, tokens, now, count_request=False)
            self._check_budgets(claim.budgets, reservation.buckets, cost)
            held.last = []
            self._take(claim, reservation.buckets, held, tokens, cost, now, count_request=False)
            held.nano += cost
            held.tokens += tokens
            reservation.quota = self._quota(claim.rates, now)
        reservation.tokens += tokens
        reservation.cost_usd += cost_usd

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        with self._lock:
            held = self._open.pop(reservation.id, None)
            if held is None:
                return  # settled already: the first settle counted
            for budget in reservation.claim.budgets:
                account = self._account(budget.scope, reservation.buckets[budget.scope])
                account.held -= held.nano
                account.spent += nano(cost_usd)
            correction = tokens - held.tokens
            for use in held.last:
                use.tokens = max(use.tokens + correction, 0)
        reservation.settled = True

    async def spent(self, budget: Budget) -> float:
        with self._lock:
            account = self._accounts.get((budget.scope, bucket(budget.period, self._clock())))
            return 0.0 if account is None else (account.spent + account.held) / NANO

    # -- under the lock -------------------------------------------------------------------------

    def _check(
        self, rates: tuple[RateLimit, ...], tokens: int, now: float, *, count_request: bool
    ) -> None:
        for rate in rates:
            if rate.unit == "requests":
                if not count_request:
                    continue
                stamps = self._stamps(rate.scope, now)
                if len(stamps) + 1 > rate.per_minute:
                    oldest = stamps[0] if stamps else now
                    raise rate_refused(
                        rate,
                        asked=1,
                        retry_after_s=oldest + WINDOW_S - now,
                        quota=self._quota(rates, now),
                    )
            else:
                uses = self._uses(rate.scope, now)
                if sum(u.tokens for u in uses) + tokens > rate.per_minute:
                    oldest = uses[0].at if uses else now
                    raise rate_refused(
                        rate,
                        asked=tokens,
                        retry_after_s=oldest + WINDOW_S - now,
                        quota=self._quota(rates, now),
                    )

    def _check_budgets(
        self, budgets: tuple[Budget, ...], buckets: dict[str, str], cost: int
    ) -> None:
        for budget in budgets:
            account = self._account(budget.scope, buckets[budget.scope])
            if account.spent + account.held + room_needed(cost) > nano(budget.limit_usd):
                raise budget_refused(
                    budget, buckets[budget.scope], spent_nano=account.spent + account.held
                )

    def _take(
        self,
        claim: Claim,
        buckets: dict[str, str],
        held: _Held,
        tokens: int,
        cost: int,
        now: float,
        *,
        count_request: bool,
    ) -> None:
        for rate in claim.rates:
            if rate.unit == "requests" and count_request:
                self._stamps(rate.scope, now).append(now)
            elif rate.unit == "tokens":
                use = _Use(now, tokens)
                self._uses(rate.scope, now).append(use)
                held.last.append(use)
        for budget in claim.budgets:
            self._account(budget.scope, buckets[budget.scope]).held += cost

    def _quota(self, rates: tuple[RateLimit, ...], now: float) -> Quota:
        found: list[tuple[str, Allowance]] = []
        for rate in rates:
            if rate.unit == "requests":
                stamps = self._stamps(rate.scope, now)
                used, oldest = len(stamps), stamps[0] if stamps else None
            else:
                uses = self._uses(rate.scope, now)
                used, oldest = sum(u.tokens for u in uses), uses[0].at if uses else None
            reset = 0.0 if oldest is None else max(oldest + WINDOW_S - now, 0.0)
            left = max(rate.per_minute - used, 0)
            found.append((rate.unit, Allowance(rate.per_minute, left, reset)))
        return tightest(found)

    def _stamps(self, scope: str, now: float) -> deque[float]:
        stamps = self._requests.setdefault(scope, deque())
        while stamps and now - stamps[0] >= WINDOW_S:
            stamps.popleft()
        return stamps

    def _uses(self, scope: str, now: float) -> deque[_Use]:
        uses = self._tokens.setdefault(scope, deque())
        while uses and now - uses[0].at >= WINDOW_S:
            uses.popleft()
        return uses

    def _account(self, scope: str, bucket_name: str) -> _Account:
        return self._accounts.setdefault((scope, bucket_name), _Account())
