"""The request context: what a caller asks for, and what each stage finds out about it.

One object travels the whole chain. The entry point (library, CLI, gateway route) fills the
`Ask`; stages fill the rest in order; the record and settle stages read all of it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from tether.errors import TetherError
from tether.messages import Message, ToolSpec
from tether.statuses import status_code

if TYPE_CHECKING:
    from tether.cache.decision import CacheDecision
    from tether.contracts.contract import Contract
    from tether.costs.limits.base import Reservation
    from tether.engine import Plan
    from tether.prompts.compiled import CompiledPrompt
    from tether.prompts.registry import PromptVersion
    from tether.result import Attempt, Result
    from tether.routing.base import RouteDecision
    from tether.server.keys import ApiKey

Operation = Literal["chat", "embed"]
# use: read and write the cache; refresh: skip the lookup, file the new answer (HTTP
# `Cache-Control: no-cache`); off: neither (`no-store`).
CacheUse = Literal["use", "refresh", "off"]
# nginx's code for a client that closed the connection before the answer was complete
CLIENT_CLOSED = 499


def error_status(error: BaseException) -> int:
    if isinstance(error, TetherError):
        return status_code(error)[0]
    if isinstance(error, asyncio.CancelledError):
        return CLIENT_CLOSED  # the caller went away (a gateway client hanging up)
    return 500


def new_request_id() -> str:
    # time-ordered prefix, then randomness: ids sort by arrival and never collide. An id is a
    # handle, not a secret (feedback on it is checked against the key that made it), so the
    # fast generator does (the random module reseeds in forked children).
    return f"req_{time.time_ns():x}{random.getrandbits(48):012x}"


@dataclass(frozen=True)
class Ask:
    """What the caller asked for, before anything was resolved."""

    endpoint: str  # where it came from: "generate", "prompts.run", "chat.completions", ...
    operation: Operation = "chat"
    messages: tuple[Message, ...] = ()  # a raw call's messages
    prompt: str | None = None  # a registered prompt to run ...
    label: str | None = None
    version: str | None = None
    compiled: CompiledPrompt | None = None  # ... or one compiled straight from a spec file
    inputs: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None  # a model name, "router:NAME", or None for the default
    contract: Contract[Any] | None = None
    tools: ToolSpec | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    max_repairs: int | None = None
    n: int = 1
    stream: bool = False
    texts: tuple[str, ...] = ()  # what to embed
    key: ApiKey | None = None  # the virtual key the gateway authenticated, if any
    metadata: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None  # the caller's own deadline for the whole request
    cache: CacheUse = "use"


@dataclass
class Context:
    """One logical request on its way through the pipeline."""

    ask: Ask
    request_id: str = field(default_factory=new_request_id)
    started: float = field(default_factory=time.perf_counter)
    # resolve
    found: PromptVersion | None = None
    compiled: CompiledPrompt | None = None
    # render
    messages: tuple[Message, ...] = ()
    contract: Contract[Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # the model (or router) the request names once resolved
    # admit
    reservation: Reservation | None = None
    # cache
    cache: CacheDecision | None = None
    # route
    route: RouteDecision | None = None
    candidates: tuple[str, ...] = ()  # the chosen model first, then its fallbacks
    skipped: list[str] = field(default_factory=list)  # candidates passed over, and why
    ineligible: list[TetherError] = field(default_factory=list)  # why each could not be tried
    # call
    deadline_s: float = 0.0  # the whole request's time limit, set when the call starts
    plan: Plan[Any] | None = None  # the plan of the model that answered (or last tried)
    results: list[Result[Any]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)  # every attempt, every model
    streamed: list[str] = field(default_factory=list)  # text sent as it was generated
    answered_by: str | None = None  # the configured model name that produced the answer
    answer: str | None = None  # an answer made without a model (a routing rule)
    embeddings: list[list[float]] | None = None
    admin: bool = False  # made with the admin token rather than a virtual key
    # outcome
    error: BaseException | None = None
    status: int = 200
    recorded: bool = False

    @property
    def done(self) -> bool:
        """Answered (by a model, a rule or a cache) or failed: nothing left to run."""
        return (
            bool(self.results)
            or self.answer is not None
            or self.embeddings is not None
            or self.error is not None
        )

    def fail(self, error: BaseException, status: int | None = None) -> None:
        """Note how the request ended, unless an earlier failure already said."""
        if self.error is None:
            self.error = error
            self.status = status if status is not None else error_status(error)

    @property
    def contract_name(self) -> str | None:
        """The contract the output met: the schema's name, or tool calls' own."""
        if self.contract is not None:
            return self.contract.name
        if self.ask.tools is not None:
            from tether.tools import TOOL_CALLS_CONTRACT

            return TOOL_CALLS_CONTRACT
        return None

    @property
    def prompt_name(self) -> str | None:
        if self.found is not None:
            return self.found.name
        if self.compiled is not None:  # a spec file run without the registry
            return self.compiled.spec.name
        return self.ask.prompt

    @property
    def result(self) -> Result[Any]:
        """The first choice, carrying every attempt of the request (what it cost)."""
        first = self.results[0]
        attempts = tuple(self.attempts)
        version = self.found.version if self.found is not None else None
        if first.attempts == attempts and first.prompt == self.prompt_name and not version:
            return first  # one model, one choice, no registered prompt: nothing to add
        return replace(first, attempts=attempts, prompt=self.prompt_name, prompt_version=version)
