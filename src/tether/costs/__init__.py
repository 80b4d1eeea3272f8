"""Token accounting and money."""

from tether.costs.pricing import cost_usd

__all__ = ["cost_usd"]
