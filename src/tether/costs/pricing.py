"""Money for tokens, from the per-model prices in settings."""

from __future__ import annotations

from tether.messages import Usage
from tether.settings import PriceSettings

_MILLION = 1_000_000


def cost_usd(usage: Usage, price: PriceSettings) -> float:
    return (
        usage.input_tokens * price.input_per_million
        + usage.output_tokens * price.output_per_million
    ) / _MILLION
