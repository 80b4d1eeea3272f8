"""OpenAI-compatible routes: chat completions (plain and SSE), models, embeddings.

Handlers take the raw Request and return Response objects built with orjson: no per-request
dependency injection or response-model validation on the hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from time import perf_counter
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from tether.costs.pricing import cost_usd
from tether.engine import Plan, run_async
from tether.errors import InvalidRequest, TetherError
from tether.messages import ProviderCall, Usage
from tether.result import Result
from tether.server.api_docs import ChatCompletionBody, EmbeddingsBody, body_doc
from tether.server.bodies import chat_request, read_json
from tether.server.embedding_bodies import (
    check_dimensions,
    embedding_inputs,
    encode,
    encoding_format,
    requested_dimensions,
)
from tether.server.errors import error_body, status_code
from tether.server.gateway import CallRecord, Gateway, new_request_id
from tether.server.keys import KEY_PREFIX

router = APIRouter()
log = logging.getLogger("tether.server")

JSON = "application/json"
# nginx's code for a client that closed the connection before the answer was complete
CLIENT_CLOSED = 499


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def start_call(
    request: Request, endpoint: str, *, admin_allowed: bool = False
) -> tuple[Gateway, CallRecord]:
    """Name the request, authenticate the caller: a virtual key, or (where `admin_allowed`)
    the admin token."""
    gateway = _gateway(request)
    call = CallRecord(new_request_id(), endpoint, None, perf_counter())
    request.state.request_id = call.request_id
    request.state.call = call  # the error handlers record it if the route cannot
    if admin_allowed and _presents_admin_token(request):
        request.app.state.auth.require(request)
        call.admin = True
        return gateway, call
    call.key = gateway.authenticate(request)
    return gateway, call


def _presents_admin_token(request: Request) -> bool:
    """A bearer credential that is not shaped like a virtual key is meant as the admin token
    (checking keys against the admin token would count them as failed admin logins)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and not value.strip().startswith(KEY_PREFIX)


def _usage(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _completion_body(call: CallRecord, result: Result[Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{call.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.raw},
                "finish_reason": result.attempts[-1].finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(result.usage),
        "tether": {
            "request_id": call.request_id,
            "provider": result.provider,
            "upstream_model": result.model,
            "attempts": len(result.attempts),
            "cost_usd": result.cost_usd,
            "contract": call.contract,
        },
    }


@router.post("/v1/chat/completions", openapi_extra=body_doc(ChatCompletionBody))
async def chat_completions(request: Request) -> Response:
    gateway, call = start_call(request, "chat.completions")
    chat = chat_request(await read_json(request, gateway.settings.server.max_body_bytes))
    call.model = chat.model or gateway.settings.default_model
    call.messages = chat.messages
    call.stream = chat.stream
    gateway.admit(call, model=call.model)
    contract = (
        gateway.client.contract(chat.schema, name=chat.schema_name)
        if chat.schema is not None
        else None
    )
    call.contract = contract.name if contract is not None else None
    plan = gateway.client.plan(chat.messages, contract=contract, model=call.model, **chat.params)
    if chat.stream:
        return StreamingResponse(
            _events(gateway, call, plan, chat.include_usage),
            media_type="text/event-stream",
            headers=call.headers(**{"cache-control": "no-cache"}),
        )
    result = await run_async(plan)
    gateway.record_result(call, result, result.output)
    return Response(
        orjson.dumps(_completion_body(call, result)),
        media_type=JSON,
        headers=call.headers(),
    )


async def _events(
    gateway: Gateway, call: CallRecord, plan: Plan[Any], include_usage: bool
) -> AsyncIterator[bytes]:
    """SSE chunks. Free text streams as generated; a structured output is validated first and
    sent once it met its contract (an unvalidated value is never passed on)."""
    created = int(time.time())
    head = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk",
            "created": created, "model": call.model}  # fmt: skip

    def event(payload: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({**head, **payload}) + b"\n\n"

    def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
        return event({"choices": [{"index": 0, "delta": content, "finish_reason": finish}]})

    parts: list[str] = []
    try:
        yield delta({"role": "assistant", "content": ""})
        if plan.contract is not None or not plan.provider.capabilities.can_stream:
            result = await run_async(plan)
            yield delta({"content": result.raw})
            gateway.record_result(call, result, result.output)
            usage, finish = result.usage, result.attempts[-1].finish_reason
        else:
            usage, finish = Usage(), "stop"
            async for piece in plan.provider.astream(ProviderCall(plan.messages, plan.params)):
                if piece.text:
                    parts.append(piece.text)
                    yield delta({"content": piece.text})
                usage = piece.usage or usage
                finish = piece.finish_reason or finish
            cost = cost_usd(usage, plan.price)
            provider = plan.provider
            gateway.record_unchecked(
                call, "".join(parts), usage, cost, provider.kind, provider.model
            )
        yield delta({}, finish)
        if include_usage:
            yield event({"choices": [], "usage": _usage(usage)})
    except TetherError as exc:
        # Headers are sent: the error travels as a terminal event, the row says what was sent.
        status, error_type, code = status_code(exc)
        partial = "".join(parts) or None
        gateway.record_error(call, exc, status, partial=partial, price=plan.price)
        yield b"data: " + error_body(exc.message, error_type, code) + b"\n\n"
    except Exception:
        log.exception("unexpected error in stream %s", call.request_id)
        gateway.record_outcome(call, 500, "internal error; see the gateway log",
                               partial="".join(parts) or None)  # fmt: skip
        yield (
            b"data: "
            + error_body("internal error; see the gateway log", "api_error", "internal_error")
            + b"\n\n"
        )
    finally:
        # A client that hangs up closes the generator mid-stream: still one row, marked so.
        if not call.recorded:
            gateway.record_outcome(
                call, CLIENT_CLOSED, "client closed the stream", partial="".join(parts) or None
            )
    yield b"data: [DONE]\n\n"


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    gateway = _gateway(request)
    key = gateway.authenticate(request)
    data = [
        {"id": info.name, "object": "model", "created": 0, "owned_by": info.provider}
        for info in gateway.client.models()
        if key is None or key.allows_model(info.name)
    ]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)


@router.post("/v1/embeddings", openapi_extra=body_doc(EmbeddingsBody))
async def embeddings(request: Request) -> Response:
    gateway, call = start_call(request, "embeddings")
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    texts = embedding_inputs(body)
    fmt, dimensions = encoding_format(body), requested_dimensions(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("`model` must be a non-empty string", param="model")
    call.model = model
    gateway.admit(call, model=model)
    provider = gateway.client.provider(model)
    if not provider.capabilities.supports_embeddings:
        raise InvalidRequest(f"model {model!r} ({provider.kind}) has no embeddings", param="model")
    vectors, usage = await provider.aembed(texts)
    check_dimensions(dimensions, vectors)
    price = gateway.settings.models[model].price if model in gateway.settings.models else None
    cost = cost_usd(usage, price) if price else 0.0
    gateway.record_unchecked(call, "", usage, cost, provider.kind, provider.model)
    payload = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(v, fmt)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
    }
    return Response(orjson.dumps(payload), media_type=JSON, headers=call.headers())
