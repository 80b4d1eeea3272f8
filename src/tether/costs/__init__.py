"""Token accounting and money."""

from tether.costs.accounting import charged, failed_attempt
from tether.costs.pricing import cost_usd

__all__ = ["charged", "cost_usd", "failed_attempt"]
