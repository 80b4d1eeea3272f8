"""tether's own routes: run a registered prompt, attach feedback to a request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import insert, select
from starlette.responses import Response

from tether.engine import run_async
from tether.errors import DatabaseUnavailable, InvalidRequest
from tether.server.api_docs import FeedbackBody, PromptRunBody, body_doc
from tether.server.bodies import read_json
from tether.server.gateway import Gateway
from tether.server.openai_routes import JSON, start_call
from tether.store.offload import in_thread
from tether.store.tables import feedback, requests

router = APIRouter()


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"`{field}` must be a string", param=field)
    return value


@router.post("/v1/prompts/{name}/run", openapi_extra=body_doc(PromptRunBody))
async def run_prompt(name: str, request: Request) -> Response:
    gateway, call = start_call(request, "prompts.run")
    call.prompt = name
    # Scope first: a key scoped to other prompts learns nothing, not even whether this exists.
    gateway.check_prompt_scope(call.key, name)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    inputs = body.get("inputs", {})
    if not isinstance(inputs, dict):
        raise InvalidRequest("`inputs` must be an object", param="inputs")
    version = _optional_str(body, "version")
    label = _optional_str(body, "label") or ("production" if version is None else None)
    model = _optional_str(body, "model")
    # The registry lookup and rendering touch the database: off the event loop.
    plan, found = await asyncio.to_thread(
        gateway.client.prompt_plan, name, inputs, label=label, version=version, model=model
    )
    call.prompt_version = found.version
    call.model = model or found.spec.model
    call.messages = plan.messages
    call.contract = plan.contract.name if plan.contract else None
    gateway.admit(call, model=call.model, prompt=name)
    result = await run_async(plan)
    output = (
        result.output.model_dump(mode="json")
        if hasattr(result.output, "model_dump")
        else result.output
    )
    gateway.record_result(call, result, output)
    payload = {
        "request_id": call.request_id,
        "prompt": name,
        "version": found.version,
        "model": call.model or gateway.settings.default_model,
        "provider": result.provider,
        "output": output,
        "raw": result.raw,
        "attempts": len(result.attempts),
        "usage": {
            "input_tokens": result.usage.input_tokens,
            "output_tokens": result.usage.output_tokens,
        },
        "cost_usd": result.cost_usd,
        "latency_ms": round(result.latency_s * 1000, 3),
    }
    return Response(orjson.dumps(payload), media_type=JSON, headers=call.headers())


@router.post("/v1/feedback", openapi_extra=body_doc(FeedbackBody))
async def post_feedback(request: Request) -> Response:
    gateway, call = start_call(request, "feedback", admin_allowed=True)
    if call.key is not None:
        call.quota = gateway.limiter.admit(call.key)  # feedback counts like any call
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
    owner = await _owner(gateway, request_id)
    if owner is None:
        # The row may still be on its way to the database; the wait runs off the event loop.
        flushed = await in_thread(lambda: gateway.log.flush(timeout_s=2.0), what="request log")
        if not flushed or not gateway.log.database_ok:
            raise DatabaseUnavailable("request log", "recent requests are not stored yet")
        owner = await _owner(gateway, request_id)
    caller = call.key.id if call.key else None
    if owner is None or not (call.admin or owner.key_id == caller):
        # Another key's request answers exactly like a missing one: nothing to learn from it.
        raise InvalidRequest(f"no request {request_id!r}", param="request_id", status=404)
    row = {
        "request_id": request_id,
        "score": float(score) if score is not None else None,
        "label": label,
        "comment": comment,
        "key_id": call.key.id if call.key else None,
        "at": datetime.now(UTC),
    }

    def store() -> None:
        with gateway.engine.begin() as conn:
            conn.execute(insert(feedback).values(**row))

    await in_thread(store, what="feedback")
    gateway.record_outcome(call, 200, None)
    return Response(
        orjson.dumps({"ok": True, "request_id": request_id}),
        media_type=JSON,
        headers=call.headers(),
    )


@dataclass(frozen=True)
class _Owner:
    key_id: str | None


async def _owner(gateway: Gateway, request_id: str) -> _Owner | None:
    """Who made a logged request (None when no such request is stored)."""

    def query() -> _Owner | None:
        with gateway.engine.connect() as conn:
            found = conn.execute(
                select(requests.c.key_id).where(requests.c.id == request_id)
            ).first()
            return None if found is None else _Owner(found.key_id)

    return await in_thread(query, what="request log")
