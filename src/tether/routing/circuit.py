"""A circuit breaker per upstream model: after `failures` failed calls in a row the model is
skipped (its fallbacks answer) for `cooldown_s`; then one probe is let through, and its outcome
closes the circuit again or opens it for another cooldown.

State is per process: each replica learns an upstream's health from its own calls, which is
what decides its own requests' latency.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

State = Literal["closed", "open", "half-open"]


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreakers:
    def __init__(
        self,
        *,
        failures: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def state(self, model: str) -> State:
        with self._lock:
            return self._state(self._circuits.get(model))

    def allow(self, model: str) -> bool:
        """Whether a call to `model` may go out now (a half-open circuit lets one probe)."""
        if model not in self._circuits:  # healthy: no lock on the hot path
            return True
        with self._lock:
            circuit = self._circuits.get(model)
            state = self._state(circuit)
            if state == "closed":
                return True
            if state == "open" or circuit is None or circuit.probing:
                return False
            circuit.probing = True
            return True

    def succeeded(self, model: str) -> None:
        if model not in self._circuits:
            return
        with self._lock:
            self._circuits.pop(model, None)

    def failed(self, model: str) -> None:
        with self._lock:
            circuit = self._circuits.setdefault(model, _Circuit())
            circuit.failures += 1
            if circuit.probing or circuit.failures >= self._threshold:
                circuit.opened_at = self._clock()
            circuit.probing = False

    def retry_in(self, model: str) -> float:
        """Seconds until an open circuit lets a probe through (0 when not open)."""
        with self._lock:
            circuit = self._circuits.get(model)
            if circuit is None or circuit.opened_at is None:
                return 0.0
            return max(0.0, circuit.opened_at + self._cooldown - self._clock())

    def _state(self, circuit: _Circuit | None) -> State:
        if circuit is None or circuit.opened_at is None:
            return "closed"
        if self._clock() - circuit.opened_at < self._cooldown:
            return "open"
        return "half-open"
