"""What every limit store does: admit a request against rate limits and money budgets by
reserving what it may use, then settle what it used.

A request reserves its maximum (the input it sends plus `max_tokens` of output, priced at the
model's rates) before any provider call; each further attempt (a retry, a repair, a fallback)
extends the reservation first; when the request ends the reservation is settled to what was
actually billed. Reserving is atomic in every backend: concurrent requests, in one process or
in several sharing a store, can overshoot a budget by at most one request's maximum.

Money is counted in integer nano-dollars inside the stores (floats drift when added many
times); the interface speaks USD. A request needs at least one nano-dollar of room, so a spent
budget refuses even a request priced at zero.

Tokens of each attempt count against tpm from the moment they are held; settling corrects the
latest attempt's count by the difference between what was used and what was held.

A reservation that is never settled (its replica died mid-call) keeps its hold: money is never
under-counted, it only stays held until the period ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

from tether.costs.limits.quota import Quota

Period = Literal["day", "month", "total"]
NANO = 1_000_000_000  # nano-dollars per dollar
WINDOW_S = 60.0  # rate limits count over a sliding minute


def nano(usd: float) -> int:
    """USD as integer nano-dollars (never negative)."""
    return max(round(usd * NANO), 0)


@dataclass(frozen=True)
class Budget:
    """A money limit on one scope over a period (periods are calendar, UTC)."""

    scope: str  # "key:<id>" or "prompt:<name>"
    limit_usd: float
    period: Period
    fix: str  # how to raise it, shown in the error

    @classmethod
    def for_key(cls, key_id: str, limit_usd: float, period: Period) -> Budget:
        return cls(
            f"key:{key_id}",
            limit_usd,
            period,
            fix="wait for the next period, use another key, or ask an admin for a key with a "
            "larger budget (`tether keys create --budget ... --budget-period ...`)",
        )

    @classmethod
    def for_prompt(cls, prompt: str, limit_usd: float, period: Period) -> Budget:
        return cls(
            f"prompt:{prompt}",
            limit_usd,
            period,
            fix=f"raise usd in the [[budgets]] entry for prompt {prompt!r} in tether.toml, "
            "or wait for the next period",
        )


@dataclass(frozen=True)
class RateLimit:
    """Requests or tokens per sliding minute for one scope."""

    scope: str
    unit: Literal["requests", "tokens"]
    per_minute: int


@dataclass(frozen=True)
class Claim:
    """What one request asks of the limits: its rates and budgets, and its maximum use."""

    rates: tuple[RateLimit, ...] = ()
    budgets: tuple[Budget, ...] = ()
    tokens: int = 0  # the most tokens the first attempt may use (counted against tpm)
    cost_usd: float = 0.0  # the most the first attempt may cost (held against budgets)

    @property
    def empty(self) -> bool:
        return not self.rates and not self.budgets


@dataclass
class Reservation:
    """What a request holds: updated by `extend`, closed by `settle` (exactly once)."""

    id: str
    claim: Claim
    tokens: int  # held now, against tpm
    cost_usd: float  # held now, against budgets
    buckets: dict[str, str] = field(default_factory=dict)  # budget scope -> period bucket
    quota: Quota = field(default_factory=Quota)  # what is left of the rate limits
    settled: bool = False


class LimitStore(ABC):
    """One backend: in process (one replica), the database, or Redis (several replicas)."""

    name: str

    @abstractmethod
    async def reserve(self, claim: Claim) -> Reservation:
        """Count one request and hold its maximum, all or nothing; raise `LimitExceeded`
        (with `retry_after_s`) or `BudgetExhausted` (naming the budget and how to raise it)."""

    @abstractmethod
    async def extend(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        """Hold `tokens` and `cost_usd` more for a further attempt (added to what is held; not
        a new request against rpm); raise as `reserve` does when it does not fit, holding
        nothing more."""

    @abstractmethod
    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        """Replace what is held by what was used (tokens against tpm, money against budgets).
        Called once per reservation, whatever happened to the request; a second call is
        ignored (the store, not only this object, remembers it was settled)."""

    @abstractmethod
    async def spent(self, budget: Budget) -> float:
        """Money settled plus held against `budget` in its current period."""

    async def close(self) -> None:  # noqa: B027 (most stores hold nothing to release)
        """Release connections."""
