"""The pieces the call stage decides with: which faults are retried or fall back, how long a
backoff lasts, and the circuit breaker's states."""

from __future__ import annotations

import pytest

from tether.errors import (
    ContextWindowExceeded,
    ContractViolation,
    MissingApiKey,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)
from tether.messages import Usage
from tether.result import Attempt
from tether.routing.circuit import CircuitBreakers
from tether.routing.retry import backoff_s, falls_back, retryable


def _rejected(status: int) -> ProviderRejected:
    return ProviderRejected(provider="p", model="m", status=status, reason="x")


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retried(status: int) -> None:
    assert retryable(_rejected(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_the_callers_own_mistakes_are_not_retried(status: int) -> None:
    assert not retryable(_rejected(status))
    assert falls_back(_rejected(status))  # another model (another key, endpoint) may take it


def test_what_fails_the_same_way_again_is_not_retried_but_falls_back() -> None:
    overflow = ContextWindowExceeded(
        provider="p", model="m", prompt_tokens=9000, max_tokens=512, context_window=8192
    )
    missing = MissingApiKey(provider="p", model="m", env_var="KEY")
    for exc in (overflow, missing):
        assert not retryable(exc)
        assert falls_back(exc)
    assert retryable(ProviderUnavailable(provider="p", model="m", url="u", reason="timed out"))
    assert retryable(ProviderError("cut", provider="p", model="m"))
    attempt = Attempt(raw="{", usage=Usage(), cost_usd=0.0, latency_s=0.0, errors=("bad",),
                      finish_reason="stop")  # fmt: skip
    assert falls_back(ContractViolation(contract="c", attempts=(attempt,)))


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    waits = [backoff_s(n, base_s=0.5, cap_s=4.0) for n in range(1, 8) for _ in range(50)]
    assert all(0 <= w <= 4.0 for w in waits)
    assert max(backoff_s(1, base_s=0.5, cap_s=4.0) for _ in range(200)) <= 0.5
    assert backoff_s(1, base_s=0.5, cap_s=4.0, retry_after_s=3.0) >= 3.0


def test_the_circuit_opens_half_opens_for_one_probe_and_closes() -> None:
    now = [0.0]
    circuits = CircuitBreakers(failures=2, cooldown_s=10, clock=lambda: now[0])
    circuits.failed("m")
    assert circuits.state("m") == "closed"
    circuits.failed("m")
    assert circuits.state("m") == "open"
    assert not circuits.allow("m")
    assert circuits.retry_in("m") == pytest.approx(10)
    now[0] = 10.5
    assert circuits.state("m") == "half-open"
    assert circuits.allow("m")  # the probe
    assert not circuits.allow("m")  # only one at a time
    circuits.failed("m")  # the probe failed: open for another cooldown
    assert circuits.state("m") == "open"
    now[0] = 21.0
    assert circuits.allow("m")
    circuits.succeeded("m")
    assert circuits.state("m") == "closed"
    assert circuits.allow("m")
    assert circuits.allow("other")  # per model
