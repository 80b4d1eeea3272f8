"""The request path: call the provider, validate, repair within a bound, account for cost.

The attempt loop is written once, as a generator that yields provider calls and receives
completions; `run_sync` and `run_async` only differ in how they perform the call. A call that
raises is thrown into the loop, which attaches every attempt made so far to the error: they were
billed whatever happens after them.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Generic, NoReturn, TypeVar, cast

from tether.contracts.contract import Contract
from tether.contracts.preflight import PreflightReport, preflight
from tether.contracts.repair import repair_messages
from tether.costs.accounting import failed_attempt
from tether.costs.pricing import cost_usd
from tether.errors import ContractViolation, TetherError
from tether.messages import Completion, GenerationParams, Message, OutputSpec, ProviderCall
from tether.providers.base import Provider
from tether.result import Attempt, Result
from tether.settings import PriceSettings

T = TypeVar("T")

Steps = Generator[ProviderCall, Completion, Result[T]]


@dataclass(frozen=True)
class Plan(Generic[T]):
    """One logical request, resolved and checked, ready to run."""

    provider: Provider
    messages: tuple[Message, ...]
    params: GenerationParams
    contract: Contract[T] | None
    output: OutputSpec | None
    price: PriceSettings
    max_repairs: int


def output_spec(contract: Contract[Any], provider: Provider) -> tuple[OutputSpec, PreflightReport]:
    """Check the contract against the provider (raising if it cannot be honoured) and build
    the spec the provider enforces."""
    schema, strict = contract.enforcement_schema()
    report = preflight(schema, provider)
    report.raise_for_problems()
    return OutputSpec(name=contract.name, schema=schema, strict=strict), report


def attempts(plan: Plan[T]) -> Steps[T]:
    started = perf_counter()
    messages = plan.messages
    done: list[Attempt] = []
    for _ in range(plan.max_repairs + 1):
        sent = perf_counter()
        repair_turns = len(messages) - len(plan.messages)
        try:
            completion = yield ProviderCall(messages, plan.params, plan.output, repair_turns)
        except TetherError as exc:
            done.append(failed_attempt(exc, plan.price, latency_s=perf_counter() - sent))
            exc.attempts = tuple(done)
            raise
        latency = perf_counter() - sent
        output, errors = _evaluate(plan.contract, completion)
        done.append(
            Attempt(
                raw=completion.text,
                usage=completion.usage,
                cost_usd=cost_usd(completion.usage, plan.price),
                latency_s=latency,
                errors=errors,
                finish_reason=completion.finish_reason,
            )
        )
        if not errors:
            return Result(
                output=cast(T, output),
                raw=completion.text,
                model=completion.model,
                provider=completion.provider,
                attempts=tuple(done),
                latency_s=perf_counter() - started,
            )
        if completion.finish_reason == "length":
            # The same budget would cut the repair off too: stop rather than pay for it.
            break
        messages = repair_messages(plan.messages, completion.text, errors)
    assert plan.contract is not None  # only a contract can reject an output
    raise ContractViolation(contract=plan.contract.name, attempts=done)


def _evaluate(contract: Contract[T] | None, completion: Completion) -> tuple[Any, tuple[str, ...]]:
    if contract is None:
        return completion.text, ()
    check, value = contract.check(completion.text)
    errors = check.errors
    if errors and completion.finish_reason == "length":
        errors = ("output was cut off at max_tokens; raise max_tokens", *errors)
    return value, errors


def run_sync(plan: Plan[T]) -> Result[T]:
    steps = attempts(plan)
    call = next(steps)
    while True:
        try:
            completion = plan.provider.complete(call)
        except TetherError as exc:
            _fail(steps, exc)
        try:
            call = steps.send(completion)
        except StopIteration as finished:
            return cast(Result[T], finished.value)


async def run_async(plan: Plan[T]) -> Result[T]:
    steps = attempts(plan)
    call = next(steps)
    while True:
        try:
            completion = await plan.provider.acomplete(call)
        except TetherError as exc:
            _fail(steps, exc)
        try:
            call = steps.send(completion)
        except StopIteration as finished:
            return cast(Result[T], finished.value)


def _fail(steps: Steps[T], exc: TetherError) -> NoReturn:
    """Hand a failed call to the attempt loop, which records it and raises `exc` again."""
    steps.throw(exc)
    raise exc  # not reached: the loop re-raises; this line is for the type checker
