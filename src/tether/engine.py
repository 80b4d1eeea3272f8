"""One model's try at a request: call the provider, validate, repair within a bound, account
for cost (the pipeline's call stage runs it per model; sync callers reach it through the
runtime's event loop).

The attempt loop is written as a generator that yields provider calls and receives
completions; `run_async` performs them. A call that
raises is thrown into the loop, which attaches every attempt made so far to the error: they were
billed whatever happens after them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator
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
from tether.tools import TOOL_CALLS_CONTRACT, ToolContracts, calls_json, tool_repair_messages

T = TypeVar("T")

Steps = Generator[ProviderCall, Completion, Result[T]]


Gate = Callable[["Plan[Any]"], Awaitable[None]]


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
    tools: ToolContracts | None = None
    model: str = ""  # the configured model name: attempts are priced and logged under it


def output_spec(contract: Contract[Any], provider: Provider) -> tuple[OutputSpec, PreflightReport]:
    """Check the contract against the provider (raising if it cannot be honoured) and build
    the spec the provider enforces."""
    schema, strict = contract.enforcement_schema()
    report = preflight(schema, provider)
    report.raise_for_problems()
    return OutputSpec(name=contract.name, schema=schema, strict=strict), report


def attempts(plan: Plan[T], first: Completion | None = None) -> Steps[T]:
    """The attempt loop; `first`, when given, is the first attempt's completion, already made
    (one choice of a call that asked for several)."""
    started = perf_counter()
    messages = plan.messages
    done: list[Attempt] = []
    for index in range(plan.max_repairs + 1):
        sent = perf_counter()
        repair_turns = len(messages) - len(plan.messages)
        spec = plan.tools.spec if plan.tools is not None else None
        try:
            if index == 0 and first is not None:
                completion = first
            else:
                completion = yield ProviderCall(
                    messages, plan.params, plan.output, repair_turns, tools=spec
                )
        except TetherError as exc:
            done.append(
                failed_attempt(exc, plan.price, latency_s=perf_counter() - sent, model=plan.model)
            )
            exc.attempts = tuple(done)
            raise
        latency = perf_counter() - sent
        output, errors = _evaluate(plan, completion)
        done.append(
            Attempt(
                raw=_shown(completion),
                usage=completion.usage,
                cost_usd=cost_usd(completion.usage, plan.price),
                latency_s=latency,
                errors=errors,
                finish_reason=completion.finish_reason,
                model=plan.model,
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
                tool_calls=completion.tool_calls,
                logprobs=completion.logprobs,
            )
        if completion.finish_reason == "length":
            # The same budget would cut the repair off too: stop rather than pay for it.
            break
        if plan.tools is not None and plan.tools.applies(completion):
            messages = tool_repair_messages(plan.messages, completion, errors)
        else:
            messages = repair_messages(plan.messages, completion.text, errors)
    if plan.tools is not None and plan.tools.applies(completion):
        raise ContractViolation(contract=TOOL_CALLS_CONTRACT, attempts=done)
    assert plan.contract is not None  # only a contract can reject an output
    raise ContractViolation(contract=plan.contract.name, attempts=done)


def _shown(completion: Completion) -> str:
    """What the model produced, as logged: its text, then its tool calls."""
    if not completion.tool_calls:
        return completion.text
    return f"{completion.text}\n{calls_json(completion.tool_calls)}".strip()


def _evaluate(plan: Plan[T], completion: Completion) -> tuple[Any, tuple[str, ...]]:
    """The output and what is wrong with it: tool calls against their tools' parameter
    schemas (when the model called, or had to), else the text against the contract."""
    value: Any
    if plan.tools is not None and plan.tools.applies(completion):
        value, errors = plan.tools.check(completion)
    elif plan.contract is None:
        return completion.text, ()
    else:
        check, value = plan.contract.check(completion.text)
        errors = check.errors
    if errors and completion.finish_reason == "length":
        errors = ("output was cut off at max_tokens; raise max_tokens", *errors)
    return value, errors


async def run_async(
    plan: Plan[T], first: Completion | None = None, *, before_repair: Gate | None = None
) -> Result[T]:
    """`before_repair`, when given, is awaited before every call after the first (a repair):
    it may refuse it by raising (a budget that cannot hold another attempt)."""
    steps = attempts(plan, first)
    try:
        call = next(steps)
    except StopIteration as finished:  # `first` met the contract: no call to make
        return cast(Result[T], finished.value)
    while True:
        try:
            if before_repair is not None and call.repair_turns:
                await before_repair(plan)
            completion = await plan.provider.acomplete(call)
        except TetherError as exc:
            _fail(steps, exc)
        try:
            call = steps.send(completion)
        except StopIteration as finished:
            return cast(Result[T], finished.value)


async def run_choices(
    plan: Plan[T], n: int, *, before_repair: Gate | None = None
) -> list[Result[T]]:
    """`n` independent runs of `plan` (OpenAI's `n`), concurrently. A provider that returns
    several choices from one call (`supports_n`) is asked once, and each choice is validated
    and repaired on its own; a server that returned fewer makes up the rest one by one. If any
    run fails, the error raised carries every attempt of every run: all were billed."""
    if n == 1:
        return [await run_async(plan, before_repair=before_repair)]
    firsts: list[Completion | None] = [None] * n
    if plan.provider.capabilities.supports_n:
        made = await _one_call(plan, n)
        for index, choice in enumerate((made, *made.alternatives)[:n]):
            firsts[index] = choice
    outcomes = await asyncio.gather(
        *(run_async(plan, first, before_repair=before_repair) for first in firsts),
        return_exceptions=True,
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if not failed:
        return cast(list[Result[T]], outcomes)
    first = failed[0]
    if isinstance(first, TetherError):
        billed = [a for o in outcomes if isinstance(o, Result) for a in o.attempts]
        for other in failed:
            if isinstance(other, TetherError):
                billed.extend(other.attempts)
        first.attempts = tuple(billed)
    raise first


async def _one_call(plan: Plan[T], n: int) -> Completion:
    spec = plan.tools.spec if plan.tools is not None else None
    sent = perf_counter()
    try:
        return await plan.provider.acomplete(
            ProviderCall(plan.messages, plan.params, plan.output, tools=spec, n=n)
        )
    except TetherError as exc:
        latency = perf_counter() - sent
        exc.attempts = (failed_attempt(exc, plan.price, latency_s=latency, model=plan.model),)
        raise


def _fail(steps: Steps[T], exc: TetherError) -> NoReturn:
    """Hand a failed call to the attempt loop, which records it and raises `exc` again."""
    steps.throw(exc)
    raise exc  # not reached: the loop re-raises; this line is for the type checker
