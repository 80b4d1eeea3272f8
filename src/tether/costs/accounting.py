"""What a request that failed still cost: the attempt that raised, charged for what the
provider reported billing before it failed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.costs.pricing import cost_usd
from tether.errors import ProviderError, TetherError
from tether.messages import Usage
from tether.result import Attempt

if TYPE_CHECKING:
    # tether.settings imports this package (limit settings): a type-only import
    from tether.settings import PriceSettings


def failed_attempt(
    exc: TetherError, price: PriceSettings, *, latency_s: float, raw: str = "", model: str = ""
) -> Attempt:
    """The attempt `exc` ended: its error, and the usage the provider reported for it (none
    unless it said, e.g. a stream cut after its usage arrived). `raw` is what it produced."""
    usage = (exc.usage if isinstance(exc, ProviderError) else None) or Usage()
    return Attempt(
        raw=raw,
        usage=usage,
        cost_usd=cost_usd(usage, price),
        latency_s=latency_s,
        errors=(exc.message,),
        finish_reason="error",
        model=model,
    )


def charged(attempts: tuple[Attempt, ...]) -> tuple[Usage, float]:
    """Total usage and cost of `attempts`."""
    usage = Usage()
    for attempt in attempts:
        usage += attempt.usage
    return usage, sum(a.cost_usd for a in attempts)
