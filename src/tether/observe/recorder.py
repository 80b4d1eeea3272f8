"""A finished request, as one request-log row: what was asked, what answered, every attempt,
what it cost, how it was routed, how it ended. Built the same way for every entry point."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import is_dataclass
from datetime import UTC, datetime
from typing import Any

from tether.costs.accounting import charged
from tether.errors import ContractViolation, TetherError
from tether.messages import Message
from tether.observe.request_log import RequestRecord
from tether.pipeline.chain import ClientClosed
from tether.pipeline.context import Context
from tether.providers.openai_wire import wire_messages
from tether.result import Attempt


def request_record(ctx: Context) -> RequestRecord:
    attempts = tuple(ctx.attempts)
    usage, cost = charged(attempts)
    error = ctx.error
    result = ctx.results[0] if ctx.results and error is None else None
    provider = ctx.plan.provider if ctx.plan is not None and error is None else None
    return RequestRecord(
        id=ctx.request_id,
        at=datetime.now(UTC),
        endpoint=ctx.ask.endpoint,
        key_id=ctx.ask.key.id if ctx.ask.key is not None else None,
        model=ctx.model or ctx.ask.model,
        provider=provider.kind if provider is not None else None,
        upstream_model=provider.model if provider is not None else None,
        prompt=ctx.prompt_name,
        prompt_version=ctx.found.version if ctx.found is not None else None,
        status=ctx.status,
        error=_error_text(error),
        stream=ctx.ask.stream,
        messages=_messages_json(ctx.messages or ctx.ask.messages),
        response=_response(ctx, attempts),
        output=_output_json(ctx) if result is not None and ctx.contract_name else None,
        contract=ctx.contract_name,
        # invalid only when an output failed its contract: a 429 judged no output
        valid=output_valid(ctx),
        attempts=_attempts_json(attempts) if attempts else None,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=cost,
        latency_ms=round((time.perf_counter() - ctx.started) * 1000, 3),
        route=_route_json(ctx),
        cache=ctx.cache.kind if ctx.cache is not None else None,
        # a hit made no call (its row's cost and tokens are zero): what it saved is the
        # original call's, as the decision says
        cache_saved_usd=ctx.cache.saved_usd if ctx.cache is not None and ctx.cache.hit else None,
        cache_saved_s=ctx.cache.saved_s if ctx.cache is not None and ctx.cache.hit else None,
        cache_detail=_cache_json(ctx),
    )


def _cache_json(ctx: Context) -> str | None:
    if ctx.cache is None:
        return None
    return json.dumps(ctx.cache.to_json(), ensure_ascii=False)


def _error_text(error: BaseException | None) -> str | None:
    if error is None:
        return None
    if isinstance(error, TetherError):
        return error.message
    if _closed_by_client(error):
        return "client closed the stream"
    return f"internal error ({type(error).__name__}); see the log"


def _closed_by_client(error: BaseException) -> bool:
    return isinstance(error, ClientClosed | asyncio.CancelledError)


def _response(ctx: Context, attempts: tuple[Attempt, ...]) -> str | None:
    if ctx.answer is not None:
        return ctx.answer
    if ctx.streamed:
        return "".join(ctx.streamed)  # what the caller received, complete or not
    if ctx.results and ctx.error is None:
        return ctx.results[0].raw
    return (attempts[-1].raw or None) if attempts else None


def output_valid(ctx: Context) -> bool | None:
    """Invalid only when an output failed its contract (a 429 or an outage judged no
    output); None when there was no contract to meet."""
    if isinstance(ctx.error, ContractViolation):
        return False
    if ctx.error is None and ctx.contract_name is not None and ctx.results:
        return True
    return None


def _output_json(ctx: Context) -> str:
    output = ctx.results[0].output
    return json.dumps(jsonable(output), ensure_ascii=False)


def jsonable(output: Any) -> Any:
    """A validated output as JSON data (Pydantic models and dataclasses dumped)."""
    if hasattr(output, "model_dump"):
        return output.model_dump(mode="json")
    if is_dataclass(output) and not isinstance(output, type):
        from dataclasses import asdict

        return asdict(output)
    return output


def _route_json(ctx: Context) -> str | None:
    decision = ctx.route
    if decision is None and not ctx.skipped and ctx.answered_by in (None, ctx.model):
        return None
    data: dict[str, Any] = {"answered_by": ctx.answered_by}
    if decision is not None:
        data.update(
            policy=decision.policy,
            model=decision.model,
            reason=decision.reason,
            score=decision.score,
            answered_by_rule=decision.answer is not None,
        )
    if ctx.skipped:
        data["skipped"] = list(ctx.skipped)
    return json.dumps(data, ensure_ascii=False)


def _messages_json(messages: tuple[Message, ...]) -> str:
    """As sent in OpenAI's format (tool calls and results included), content always text."""
    wire = wire_messages(messages)
    rows = [{**w, "content": m.content} for m, w in zip(messages, wire, strict=True)]
    return json.dumps(rows, ensure_ascii=False)


def _attempts_json(attempts: tuple[Attempt, ...]) -> str:
    return json.dumps(
        [
            {
                "model": a.model,
                "raw": a.raw,
                "errors": list(a.errors),
                "input_tokens": a.usage.input_tokens,
                "cached_input_tokens": a.usage.cached_input_tokens,
                "cache_write_tokens": a.usage.cache_write_tokens,
                "output_tokens": a.usage.output_tokens,
                "cost_usd": a.cost_usd,
                "latency_ms": round(a.latency_s * 1000, 3),
                "finish_reason": a.finish_reason,
            }
            for a in attempts
        ],
        ensure_ascii=False,
    )
