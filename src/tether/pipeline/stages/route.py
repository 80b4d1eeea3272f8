"""route: which model answers, and which ones after it if it fails.

A request that names `router:NAME` asks that router's policy (fixed, weighted, rules, learned);
its decision and reason go on the context, and so into the request log. A rule may answer
outright: then no model is called at all. The chosen model's fallbacks follow it: the router's
own, then the model's (`[models.NAME] fallbacks`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from tether.errors import ConfigError
from tether.pipeline.context import Context
from tether.pipeline.stage import Stage
from tether.result import Result
from tether.routing.base import RouteDecision, RouteInput, RoutePolicy
from tether.routing.config import routed_models, router_name
from tether.settings import Settings


class Route(Stage):
    name = "route"

    def __init__(self, settings: Settings, build: Callable[[str], RoutePolicy]) -> None:
        self._settings = settings
        self._build = build
        self._policies: dict[str, RoutePolicy] = {}
        self._lock = threading.Lock()

    async def run(self, ctx: Context) -> None:
        requested = ctx.model or self._settings.default_model
        router = router_name(requested)
        if router is None:
            ctx.candidates = self._with_fallbacks(requested, ())
            return
        policy = self.policy(router)
        route_input = RouteInput(
            messages=ctx.messages,
            prompt=ctx.prompt_name,
            inputs=ctx.ask.inputs,
            metadata=ctx.ask.metadata,
            request_id=ctx.request_id,
        )
        decision: RouteDecision
        if policy.cpu_bound:  # e.g. embedding the input: not on the event loop
            decision = await asyncio.to_thread(policy.decide, route_input)
        else:
            decision = policy.decide(route_input)
        ctx.route = decision
        if decision.answer is not None:
            answer_by_rule(ctx, decision.answer, router)
            return
        assert decision.model is not None  # a decision without an answer names a model
        fallbacks = tuple(self._settings.routers[router].fallbacks)
        ctx.candidates = self._with_fallbacks(decision.model, fallbacks)

    def policy(self, router: str) -> RoutePolicy:
        """The router's policy, built once (a learned one loads its file and embedder)."""
        with self._lock:
            found = self._policies.get(router)
        if found is None:
            found = self._build(router)
            with self._lock:
                found = self._policies.setdefault(router, found)
        return found

    def possible(self, requested: str) -> list[str]:
        """Every model that may answer a request for `requested` (what budgets price)."""
        router = router_name(requested)
        if router is None or router not in self._settings.routers:
            return list(self._with_fallbacks(requested, ()))
        chosen = [model for _, model in routed_models(self._settings.routers[router])]
        out: list[str] = []
        for model in chosen:
            out += self._with_fallbacks(model, ())
        return list(dict.fromkeys(out))

    def _with_fallbacks(self, model: str, fallbacks: tuple[str, ...]) -> tuple[str, ...]:
        configured = self._settings.models.get(model)
        own = tuple(configured.fallbacks) if configured is not None else ()
        if not fallbacks and not own:
            return (model,)  # the common case, without building anything
        return tuple(dict.fromkeys((model, *fallbacks, *own)))


def answer_by_rule(ctx: Context, answer: str, router: str) -> None:
    """A rule's fixed answer is the result: checked against the contract like any output (a
    rule whose answer does not meet it is a configuration error, never passed on)."""
    ctx.answer = answer
    output: object = answer
    if ctx.contract is not None:
        check, output = ctx.contract.check(answer)
        if check.errors:
            raise ConfigError(
                f"the answer of a rule does not meet contract {ctx.contract.name!r}: "
                + "; ".join(check.errors),
                file=None,
                field=f"routers.{router}.rules",
                fix="make the rule's answer valid JSON for the contract, or route to a model",
            )
    ctx.results = [
        Result(
            output=output,
            raw=answer,
            model=f"router:{router}",
            provider="rule",
            attempts=(),
            latency_s=time.perf_counter() - ctx.started,
        )
    ]
