"""tether's own routes: run a registered prompt, attach feedback to a request."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from tether.costs.accounting import charged
from tether.costs.limits.base import Claim, RateLimit
from tether.errors import DatabaseUnavailable, InvalidRequest, KeyScopeError
from tether.observe.recorder import jsonable
from tether.server.api_docs import FeedbackBody, PromptRunBody, body_doc
from tether.server.bodies import read_json
from tether.server.gateway import completed, headers
from tether.server.openai_routes import JSON, start_call
from tether.store.feedback import add_feedback, request_owner
from tether.store.offload import in_thread

router = APIRouter()


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"`{field}` must be a string", param=field)
    return value


@router.post("/v1/prompts/{name}/run", openapi_extra=body_doc(PromptRunBody))
async def run_prompt(name: str, request: Request) -> Response:
    gateway, ctx = start_call(request, "prompts.run")
    ctx.ask = completed(ctx, prompt=name)
    # Scope first: a key scoped to other prompts learns nothing, not even whether this exists.
    key = ctx.ask.key
    if key is not None and not key.allows_prompt(name):
        raise KeyScopeError("prompt", name)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        raise InvalidRequest("`inputs` must be an object", param="inputs")
    version = _optional_str(body, "version")
    label = _optional_str(body, "label") or ("production" if version is None else None)
    model = _optional_str(body, "model")
    await gateway.run(ctx, prompt=name, inputs=inputs, version=version, label=label, model=model)
    result = ctx.result
    usage, cost = charged(tuple(ctx.attempts))
    payload = {
        "request_id": ctx.request_id,
        "prompt": name,
        "version": result.prompt_version,
        "model": ctx.model,
        "provider": result.provider,
        "output": jsonable(result.output),
        "raw": result.raw,
        "attempts": len(ctx.attempts),
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        "cost_usd": cost,
        "latency_ms": round(result.latency_s * 1000, 3),
        "route": ctx.route.reason if ctx.route is not None else None,
    }
    return Response(orjson.dumps(payload), media_type=JSON, headers=headers(ctx))


@router.post("/v1/feedback", openapi_extra=body_doc(FeedbackBody))
async def post_feedback(request: Request) -> Response:
    gateway, ctx = start_call(request, "feedback", admin_allowed=True)
    key = ctx.ask.key
    if key is not None and key.rpm is not None:  # feedback counts against the key's rate
        claim = Claim(rates=(RateLimit(f"key:{key.id}", "requests", key.rpm),))
        ctx.reservation = await gateway.runtime.limits.reserve(claim)
        await gateway.runtime.limits.settle(ctx.reservation, tokens=0, cost_usd=0.0)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    request_id = _optional_str(body, "request_id")
    if not request_id:
        raise InvalidRequest("`request_id` is required", param="request_id")
    score = body.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise InvalidRequest("`score` must be a number", param="score")
    label, comment = _optional_str(body, "label"), _optional_str(body, "comment")
    if score is None and label is None and comment is None:
        raise InvalidRequest("give at least one of score, label, comment")
    engine = gateway.engine
    found = await in_thread(lambda: request_owner(engine, request_id), what="request log")
    if found is None:
        # The row may still be on its way to the database; the wait runs off the event loop.
        flushed = await in_thread(lambda: gateway.log.flush(timeout_s=2.0), what="request log")
        if not flushed or not gateway.log.database_ok:
            raise DatabaseUnavailable("request log", "recent requests are not stored yet")
        found = await in_thread(lambda: request_owner(engine, request_id), what="request log")
    caller = key.id if key is not None else None
    if found is None or not (ctx.admin or found.key_id == caller):
        # Another key's request answers exactly like a missing one: nothing to learn from it.
        raise InvalidRequest(f"no request {request_id!r}", param="request_id", status=404)
    score_value = float(score) if score is not None else None
    await in_thread(
        lambda: add_feedback(engine, request_id, score_value, label, comment, caller),
        what="feedback",
    )
    await gateway.record(ctx)
    return Response(
        orjson.dumps({"ok": True, "request_id": request_id}),
        media_type=JSON,
        headers=headers(ctx),
    )
