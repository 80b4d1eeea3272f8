"""What the call stage does with a model, per kind of request: chat (whole, or streamed as it
is generated) and embeddings. One class per operation, chosen by `Ask.operation`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from time import perf_counter
from typing import Any

from tether.costs.accounting import failed_attempt
from tether.costs.pricing import cost_usd
from tether.engine import Plan, run_choices
from tether.errors import InvalidRequest, ProviderError, TetherError
from tether.messages import GenerationParams, ProviderCall, Usage
from tether.pipeline.context import Context
from tether.pipeline.planning import Planner
from tether.result import Attempt, Result

Gate = Callable[[Plan[Any]], Awaitable[None]] | None


class Operation:
    def plan(self, planner: Planner, ctx: Context, model: str) -> Plan[Any]:
        raise NotImplementedError

    def streams(self, ctx: Context, plan: Plan[Any]) -> bool:
        """Whether this attempt sends text as it is generated (`stream`) rather than a whole
        result (`complete`)."""
        return False

    async def complete(self, ctx: Context, plan: Plan[Any], gate: Gate) -> None:
        """One try on `plan`'s model, with its repairs: the result goes on the context."""
        raise NotImplementedError

    def stream(self, ctx: Context, plan: Plan[Any]) -> AsyncIterator[str]:
        raise NotImplementedError(f"{type(self).__name__} does not stream")


class Chat(Operation):
    """A completion validated against its contract (or tools) and repaired within a bound;
    free text the caller streams goes out as it is generated."""

    def plan(self, planner: Planner, ctx: Context, model: str) -> Plan[Any]:
        plan = planner.plan(
            model,
            ctx.messages,
            contract=ctx.contract,
            tools=ctx.ask.tools,
            params=ctx.params,
            max_repairs=ctx.ask.max_repairs,
        )
        if not plan.provider.capabilities.supports_chat:
            raise InvalidRequest(
                f"model {model!r} only embeds; use it with /v1/embeddings", param="model"
            )
        return plan

    def streams(self, ctx: Context, plan: Plan[Any]) -> bool:
        return ctx.ask.stream and streams_text(plan, ctx.ask.n)

    async def complete(self, ctx: Context, plan: Plan[Any], gate: Gate) -> None:
        results = await run_choices(plan, ctx.ask.n, before_repair=gate)
        for result in results:
            ctx.attempts.extend(result.attempts)
        ctx.results = results

    def stream(self, ctx: Context, plan: Plan[Any]) -> AsyncIterator[str]:
        return _stream_text(ctx, plan)


def streams_text(plan: Plan[Any], n: int) -> bool:
    """Whether tokens can go out as generated: free text from one streaming completion. A
    contract, tools, `n` or logprobs mean a validated whole result, sent once it is complete
    (an unvalidated value is never passed on)."""
    return (
        plan.contract is None
        and plan.tools is None
        and n == 1
        and not plan.params.logprobs
        and plan.provider.capabilities.can_stream
    )


async def _stream_text(ctx: Context, plan: Plan[Any]) -> AsyncIterator[str]:
    provider = plan.provider
    started = perf_counter()
    parts: list[str] = []
    usage, finish = Usage(), "stop"
    try:
        async for piece in provider.astream(ProviderCall(plan.messages, plan.params)):
            if piece.text:
                parts.append(piece.text)
                ctx.streamed.append(piece.text)
                yield piece.text
            usage = piece.usage or usage
            finish = piece.finish_reason or finish
    except TetherError as exc:
        partial = "".join(parts)
        if isinstance(exc, ProviderError) and exc.usage is None and parts:
            exc.usage = _partial_usage(plan, partial, len(parts))
        latency = perf_counter() - started
        exc.attempts = (
            failed_attempt(exc, plan.price, latency_s=latency, raw=partial, model=plan.model),
        )
        raise
    text = "".join(parts)
    latency = perf_counter() - started
    attempt = Attempt(
        raw=text,
        usage=usage,
        cost_usd=cost_usd(usage, plan.price),
        latency_s=latency,
        errors=(),
        finish_reason=finish,
        model=plan.model,
    )
    ctx.attempts.append(attempt)
    ctx.results = [
        Result(
            output=text,
            raw=text,
            model=provider.model,
            provider=provider.kind,
            attempts=(attempt,),
            latency_s=latency,
        )
    ]


def _partial_usage(plan: Plan[Any], partial: str, chunks: int) -> Usage:
    """What a stream cut before its usage arrived was billed, as near as can be told: the
    prompt and the text received, counted with the model's tokenizer where there is one (a
    chunk is about a token otherwise)."""
    provider = plan.provider
    prompt = "".join(m.content for m in plan.messages)
    counted_in = provider.count_tokens(prompt)
    counted_out = provider.count_tokens(partial)
    return Usage(
        input_tokens=counted_in if counted_in is not None else len(prompt) // 4,
        output_tokens=counted_out if counted_out is not None else chunks,
    )


class Embed(Operation):
    """Vectors for `Ask.texts`."""

    def plan(self, planner: Planner, ctx: Context, model: str) -> Plan[Any]:
        name, provider, price = planner.pool.resolve(model)
        if not provider.capabilities.supports_embeddings:
            raise InvalidRequest(
                f"model {name!r} ({provider.kind}) has no embeddings", param="model"
            )
        return Plan(
            provider=provider,
            messages=(),
            params=GenerationParams(),
            contract=None,
            output=None,
            price=price,
            max_repairs=0,
            model=name,
        )

    async def complete(self, ctx: Context, plan: Plan[Any], gate: Gate) -> None:
        started = perf_counter()
        try:
            vectors, usage = await plan.provider.aembed(list(ctx.ask.texts))
        except TetherError as exc:
            latency = perf_counter() - started
            exc.attempts = (failed_attempt(exc, plan.price, latency_s=latency, model=plan.model),)
            raise
        ctx.attempts.append(
            Attempt(
                raw="",
                usage=usage,
                cost_usd=cost_usd(usage, plan.price),
                latency_s=perf_counter() - started,
                errors=(),
                finish_reason="stop",
                model=plan.model,
            )
        )
        _check_dimensions(ctx.ask.params.get("dimensions"), vectors)
        ctx.embeddings = vectors


def _check_dimensions(requested: int | None, vectors: list[list[float]]) -> None:
    """A model's vectors have one length; asking for another is refused, never truncated."""
    if requested is None or not vectors or len(vectors[0]) == requested:
        return
    raise InvalidRequest(
        f"this model makes {len(vectors[0])}-dimensional vectors, not {requested}",
        param="dimensions",
        fix=f"leave `dimensions` unset or set it to {len(vectors[0])}",
    )


OPERATIONS: dict[str, Operation] = {"chat": Chat(), "embed": Embed()}
