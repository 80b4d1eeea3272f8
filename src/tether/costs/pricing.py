"""Money for tokens, from the per-model prices in settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tether.messages import Usage

if TYPE_CHECKING:
    # tether.settings imports this package (limit settings): a type-only import
    from tether.settings import PriceSettings

_MILLION = 1_000_000


def cost_usd(usage: Usage, price: PriceSettings) -> float:
    """Each part of the input at its own rate (plain, read from cache, written to cache),
    the output at the output rate."""
    return (
        usage.uncached_input_tokens * price.input_per_million
        + usage.cached_input_tokens * price.cached_input_rate
        + usage.cache_write_tokens * price.cache_write_rate
        + usage.output_tokens * price.output_per_million
    ) / _MILLION
