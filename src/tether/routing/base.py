"""What a routing policy is: given a request, pick the model that answers it (or answer it
outright), and say why. Policies are small, deterministic and fast: they run on every request."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tether.messages import Message


@dataclass(frozen=True)
class RouteInput:
    """What a policy may look at."""

    messages: tuple[Message, ...]
    prompt: str | None = None  # the registered prompt's name, when the call ran one
    inputs: Mapping[str, object] = field(default_factory=dict)  # the prompt's variables
    metadata: Mapping[str, str] = field(default_factory=dict)  # caller-supplied tags
    # The gateway's request id: a weighted policy hashes it so a retry lands on the same arm.
    request_id: str | None = None

    @property
    def text(self) -> str:
        """What this request asks (what rules and models read): the last user message. A
        prompt's few-shot examples and earlier turns come before it and are the same for
        many requests; they would hide the difference between them."""
        return last_user_text(self.messages)


def last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


@dataclass(frozen=True)
class RouteDecision:
    """A model to call, or an answer made without one (`answer` set, `model` None)."""

    model: str | None
    reason: str  # shown in the request log and the request detail page
    policy: str  # the policy's kind, e.g. "rules", "learned"
    score: float | None = None  # e.g. the learned policy's predicted pass probability
    answer: str | None = None


class RoutePolicy(ABC):
    kind: str
    # True when deciding takes real CPU time (embedding the input): the pipeline then decides
    # in a worker thread rather than on the event loop.
    cpu_bound: bool = False

    @abstractmethod
    def decide(self, request: RouteInput) -> RouteDecision: ...
