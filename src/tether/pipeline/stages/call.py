"""call: the chosen model, then its fallbacks, until one answers within the deadline.

Per model: skipped while its circuit is open or when it cannot take the request (the contract
fails its pre-flight, it does not chat or embed); transient faults retried with backoff that
honours Retry-After; a failure another model may not have (an upstream fault that outlived its
retries, a contract still unmet after repairs) moves on to the next model. Every attempt, on
every model, is kept on the context: each was billed, each is priced by the model that made it.
Before every attempt after the first, the request's reservation is extended to hold it.

Once text has been streamed to the caller nothing is retried: a later failure ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from time import perf_counter
from typing import Any

from tether.costs.accounting import failed_attempt
from tether.costs.limits.base import LimitStore
from tether.engine import Plan
from tether.errors import CircuitOpen, DeadlineExceeded, ProviderError, TetherError
from tether.pipeline.context import Context
from tether.pipeline.operations import OPERATIONS, Operation
from tether.pipeline.planning import Planner
from tether.pipeline.stage import Stage
from tether.routing.circuit import CircuitBreakers
from tether.routing.retry import backoff_s, falls_back, retryable
from tether.settings import CallSettings, ModelSettings

Maximum = Callable[[Context, Iterable[str]], tuple[int, float]]


class Call(Stage):
    name = "call"
    produces = True

    def __init__(
        self,
        planner: Planner,
        circuits: CircuitBreakers,
        settings: CallSettings,
        models: Mapping[str, ModelSettings],
        store: LimitStore,
        maximum: Maximum,
    ) -> None:
        self._planner = planner
        self._circuits = circuits
        self._settings = settings
        self._models = models
        self._store = store
        self._maximum = maximum

    async def stream(self, ctx: Context) -> AsyncIterator[str]:
        operation = OPERATIONS[ctx.ask.operation]
        ctx.deadline_s = min(ctx.ask.timeout_s or self._settings.deadline_s,
                             self._settings.deadline_s)  # fmt: skip
        deadline = ctx.started + ctx.deadline_s
        failure: TetherError | None = None
        try:
            for model in ctx.candidates:
                plan = self._eligible(ctx, operation, model)
                if plan is None:
                    continue
                retries = self._retries(model)
                for retry in range(retries + 1):
                    if ctx.attempts:
                        await self._hold_another(ctx, plan)
                    started = perf_counter()
                    try:
                        async with self._deadline_guard(plan, deadline - started):
                            if operation.streams(ctx, plan):
                                async for piece in operation.stream(ctx, plan):
                                    yield piece
                            else:
                                await operation.complete(ctx, plan, self._gate(ctx))
                    except TimeoutError:
                        late = _past_deadline(ctx, plan, started)
                        ctx.attempts.extend(late.attempts)
                        self._circuits.failed(model)
                        raise late from None
                    except TetherError as exc:
                        ctx.attempts.extend(exc.attempts)
                        failure = exc
                        if retryable(exc):  # an upstream fault, not this request's own
                            self._circuits.failed(model)
                        if ctx.streamed or perf_counter() >= deadline:
                            raise
                        if retryable(exc) and retry < retries:
                            await self._back_off(exc, retry + 1, deadline)
                            continue
                        if falls_back(exc):
                            ctx.skipped.append(f"{model}: {exc.message}")
                            break
                        raise
                    else:
                        self._circuits.succeeded(model)
                        ctx.answered_by = model
                        return
            raise failure if failure is not None else self._nothing_eligible(ctx)
        except TetherError as exc:
            exc.attempts = tuple(ctx.attempts)  # every attempt, every model: all were billed
            raise

    def _eligible(self, ctx: Context, operation: Operation, model: str) -> Plan[Any] | None:
        """The plan for `model`, or None (the reason noted) when it cannot be tried now."""
        if not self._circuits.allow(model):
            ctx.skipped.append(f"{model}: circuit open")
            return None
        try:
            plan = operation.plan(self._planner, ctx, model)
        except TetherError as exc:
            if len(ctx.candidates) == 1:
                raise
            ctx.skipped.append(f"{model}: {exc.message}")
            ctx.ineligible.append(exc)
            return None
        ctx.plan = plan
        return plan

    def _deadline_guard(self, plan: Plan[Any], left_s: float) -> AbstractAsyncContextManager[Any]:
        """A timeout at the request's deadline, unless the attempt ends sooner by itself: its
        provider stops each call at the model's timeout, and even every repair timing out
        fits in what is left (a timer per request is measurable on the hot path)."""
        configured = self._models.get(plan.model)
        own_limit = configured.timeout_s * (plan.max_repairs + 1) if configured else left_s
        if plan.provider.capabilities.honours_timeout and own_limit < left_s:
            return _NO_GUARD
        return asyncio.timeout(left_s)

    def _gate(self, ctx: Context) -> Callable[[Plan[Any]], Any] | None:
        """What a repair waits for first: room in the request's reservation (none to make
        when nothing limits the request)."""
        if ctx.reservation is None:
            return None

        async def hold(plan: Plan[Any]) -> None:
            await self._hold_another(ctx, plan)

        return hold

    async def _hold_another(self, ctx: Context, plan: Plan[Any]) -> None:
        """Extend the reservation by one more attempt on `plan`'s model (raises when the
        budget cannot hold it: the request ends there, its attempts so far charged)."""
        reservation = ctx.reservation
        if reservation is None or (not reservation.claim.budgets and not reservation.tokens):
            return
        tokens, cost = await asyncio.to_thread(self._maximum, ctx, [plan.model])
        await self._store.extend(reservation, tokens=tokens, cost_usd=cost)

    async def _back_off(self, exc: TetherError, retry: int, deadline: float) -> None:
        retry_after = exc.retry_after_s if isinstance(exc, ProviderError) else None
        wait = backoff_s(
            retry,
            base_s=self._settings.retry_base_s,
            cap_s=self._settings.retry_cap_s,
            retry_after_s=retry_after,
        )
        left = deadline - perf_counter()
        if wait >= left:
            raise exc  # the upstream's wait outlasts the request's deadline
        await asyncio.sleep(wait)

    def _retries(self, model: str) -> int:
        configured = self._models.get(model)
        return configured.max_retries if configured is not None else 0

    def _nothing_eligible(self, ctx: Context) -> TetherError:
        if ctx.ineligible:
            return ctx.ineligible[0]
        model = ctx.candidates[0] if ctx.candidates else (ctx.model or "")
        _, provider, _ = self._planner.pool.resolve(model)
        return CircuitOpen(
            provider=provider.kind, model=provider.model, retry_in_s=self._circuits.retry_in(model)
        )


_NO_GUARD = contextlib.nullcontext()


def _past_deadline(ctx: Context, plan: Plan[Any], started: float) -> DeadlineExceeded:
    """The request's deadline passed during this attempt: it is billed like any failed one."""
    provider = plan.provider
    exc = DeadlineExceeded(provider=provider.kind, model=provider.model, deadline_s=ctx.deadline_s)
    latency = perf_counter() - started
    exc.attempts = (failed_attempt(exc, plan.price, latency_s=latency, model=plan.model),)
    return exc
