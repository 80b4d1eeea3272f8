"""Which failures are worth another try, and how long to wait before it: exponential backoff
with full jitter, never sooner than the upstream's `Retry-After`, never past the deadline."""

from __future__ import annotations

import random

from tether.errors import (
    ContextWindowExceeded,
    MissingApiKey,
    ModelFileError,
    ProviderError,
    ProviderRejected,
    TetherError,
)

# Statuses after which the same request may succeed: throttling, timeouts, server faults.
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def retryable(exc: TetherError) -> bool:
    """A transient upstream fault: the same request to the same model may succeed."""
    if isinstance(exc, ContextWindowExceeded | MissingApiKey | ModelFileError):
        return False  # the same request fails the same way: only another model may help
    if isinstance(exc, ProviderRejected):
        return exc.status is None or exc.status in RETRY_STATUSES
    return isinstance(exc, ProviderError)


def falls_back(exc: TetherError) -> bool:
    """A failure that another model may not have: any upstream fault (including a request too
    long for this model's context) and a contract the model could not meet after repairs."""
    from tether.errors import ContractViolation, UnsupportedSchema

    return isinstance(exc, ProviderError | ContractViolation | UnsupportedSchema)


def backoff_s(
    retry: int, *, base_s: float, cap_s: float, retry_after_s: float | None = None
) -> float:
    """The wait before retry number `retry` (1-based): full jitter over base·2^(retry-1),
    capped, and at least what the upstream asked for."""
    wait = random.uniform(0, min(cap_s, base_s * 2 ** (retry - 1)))
    if retry_after_s is not None:
        wait = max(wait, retry_after_s)
    return wait
