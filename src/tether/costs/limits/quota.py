"""What is left of a caller's rate limits, as OpenAI's `x-ratelimit-*` headers say it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Allowance:
    limit: int
    remaining: int
    reset_s: float  # until the oldest counted use leaves the window


@dataclass(frozen=True)
class Quota:
    """What is left of a key's rate limits, as OpenAI's `x-ratelimit-*` headers say it."""

    requests: Allowance | None = None
    tokens: Allowance | None = None

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for unit, allowance in (("requests", self.requests), ("tokens", self.tokens)):
            if allowance is not None:
                out[f"x-ratelimit-limit-{unit}"] = str(allowance.limit)
                out[f"x-ratelimit-remaining-{unit}"] = str(allowance.remaining)
                out[f"x-ratelimit-reset-{unit}"] = f"{allowance.reset_s:.3f}s"
        return out


def tightest(allowances: Sequence[tuple[str, Allowance]]) -> Quota:
    """One Quota from several scopes' allowances ((unit, allowance) pairs): per unit, the one
    with the least left, since that one refuses first."""
    least: dict[str, Allowance] = {}
    for unit, allowance in allowances:
        held = least.get(unit)
        if held is None or allowance.remaining < held.remaining:
            least[unit] = allowance
    return Quota(least.get("requests"), least.get("tokens"))
