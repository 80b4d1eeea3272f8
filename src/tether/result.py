"""What a logical request returns: the validated output and everything it cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from tether.messages import TokenLogprob, ToolCall, Usage

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One provider call within a logical request: the first try, a repair, a retry after a
    transient fault or a call to a fallback model (`model` says which). A call that
    raised is an attempt too: `finish_reason` "error", its error in `errors`, and the usage its
    provider reported billing (none unless it said)."""

    raw: str
    usage: Usage
    cost_usd: float
    latency_s: float
    errors: tuple[str, ...]
    finish_reason: str
    model: str = ""  # the configured model that made it (fallbacks change it)

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True, slots=True)
class Result(Generic[T]):
    """A validated output plus its provenance. `output` always met the contract."""

    output: T
    raw: str
    model: str
    provider: str
    attempts: tuple[Attempt, ...]
    latency_s: float
    prompt: str | None = None  # set when the call came from a registered prompt
    prompt_version: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # validated against their tools' parameters
    logprobs: tuple[TokenLogprob, ...] | None = None

    @property
    def usage(self) -> Usage:
        total = Usage()
        for attempt in self.attempts:
            total += attempt.usage
        return total

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    @property
    def repairs(self) -> int:
        """Attempts after the first (repairs, retries and fallbacks alike)."""
        return max(len(self.attempts) - 1, 0)
