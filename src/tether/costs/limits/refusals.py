"""The errors every store raises when a claim does not fit, worded the same in each."""

from __future__ import annotations

from tether.costs.limits.base import NANO, WINDOW_S, Budget, RateLimit
from tether.costs.limits.quota import Quota
from tether.errors import BudgetExhausted, LimitExceeded


def rate_refused(
    rate: RateLimit, *, asked: int, retry_after_s: float, quota: Quota | None = None
) -> LimitExceeded:
    """`asked`: what this request needed of the limit (1 request, or its tokens); `quota`:
    what is left of every rate the claim named, for the 429's x-ratelimit headers."""
    kind = "request" if rate.unit == "requests" else "token"
    if asked > rate.per_minute:
        # It can never fit: waiting does not help, a smaller request does.
        error = LimitExceeded(
            f"this request needs {asked} tokens, more than the {kind} rate limit of "
            f"{rate.per_minute}/min for {rate.scope}; lower max_tokens or shorten the prompt",
            retry_after_s=WINDOW_S,
        )
    else:
        error = LimitExceeded(
            f"{kind} rate limit of {rate.per_minute}/min for {rate.scope} reached",
            retry_after_s=max(retry_after_s, 0.0),
        )
    error.quota = quota
    return error


def budget_refused(budget: Budget, bucket: str, *, spent_nano: int) -> BudgetExhausted:
    """`spent_nano`: settled plus held in the bucket when the claim was refused."""
    return BudgetExhausted(
        scope=budget.scope,
        period=budget.period,
        bucket=bucket,
        spent_usd=spent_nano / NANO,
        limit_usd=budget.limit_usd,
        fix=budget.fix,
    )


def room_needed(nano: int) -> int:
    """What a hold must find free: at least one nano-dollar, so a spent budget refuses even
    a request priced at zero."""
    return max(nano, 1)
