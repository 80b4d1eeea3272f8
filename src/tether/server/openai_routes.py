"""OpenAI-compatible routes: chat completions (plain and SSE), models, embeddings.

Handlers take the raw Request and return Response objects built with orjson: no per-request
dependency injection or response-model validation on the hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from time import perf_counter
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from tether.costs.pricing import cost_usd
from tether.engine import Plan, run_choices
from tether.errors import InvalidRequest, TetherError
from tether.messages import ProviderCall, Usage
from tether.result import Result
from tether.server.api_docs import ChatCompletionBody, EmbeddingsBody, body_doc
from tether.server.bodies import ChatRequest, chat_request, read_json
from tether.server.chat_response import (
    choices_body,
    finish_reason,
    result_deltas,
    usage_body,
)
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
from tether.tools import TOOL_CALLS_CONTRACT

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


def _completion_body(call: CallRecord, results: list[Result[Any]]) -> dict[str, Any]:
    merged = _merged(results)
    return {
        "id": f"chatcmpl-{call.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "choices": choices_body(results),
        "usage": usage_body(merged.usage),
        "tether": {
            "request_id": call.request_id,
            "provider": merged.provider,
            "upstream_model": merged.model,
            "attempts": len(merged.attempts),
            "cost_usd": merged.cost_usd,
            "contract": call.contract,
        },
    }


def _merged(results: list[Result[Any]]) -> Result[Any]:
    """The first choice carrying every choice's attempts: what the request cost and logs."""
    if len(results) == 1:
        return results[0]
    return replace(results[0], attempts=tuple(a for r in results for a in r.attempts))


@router.post("/v1/chat/completions", openapi_extra=body_doc(ChatCompletionBody))
async def chat_completions(request: Request) -> Response:
    gateway, call = start_call(request, "chat.completions")
    chat = chat_request(await read_json(request, gateway.settings.server.max_body_bytes))
    call.model = chat.model or gateway.settings.default_model
    call.messages = chat.messages
    call.stream = chat.stream
    gateway.admit(call, model=call.model)
    if not gateway.client.provider(call.model).capabilities.supports_chat:
        raise InvalidRequest(
            f"model {call.model!r} only embeds; use it with /v1/embeddings", param="model"
        )
    contract = (
        gateway.client.contract(chat.schema, name=chat.schema_name)
        if chat.schema is not None
        else None
    )
    call.contract = contract.name if contract is not None else None
    if call.contract is None and chat.tools is not None:
        call.contract = TOOL_CALLS_CONTRACT
    plan = gateway.client.plan(
        chat.messages, contract=contract, model=call.model, tools=chat.tools, **chat.params
    )
    if chat.stream:
        return StreamingResponse(
            _events(gateway, call, plan, chat),
            media_type="text/event-stream",
            headers=call.headers(**{"cache-control": "no-cache"}),
        )
    results = await run_choices(plan, chat.n)
    merged = _merged(results)
    gateway.record_result(call, merged, merged.output)
    return Response(
        orjson.dumps(_completion_body(call, results)),
        media_type=JSON,
        headers=call.headers(),
    )


def _streams_text(plan: Plan[Any], chat: ChatRequest) -> bool:
    """Whether tokens can go out as generated: free text from one streaming completion. A
    contract, tools, `n` or logprobs mean a validated whole result, sent once it is complete
    (an unvalidated value is never passed on)."""
    return (
        plan.contract is None
        and plan.tools is None
        and chat.n == 1
        and not plan.params.logprobs
        and plan.provider.capabilities.can_stream
    )


async def _events(
    gateway: Gateway, call: CallRecord, plan: Plan[Any], chat: ChatRequest
) -> AsyncIterator[bytes]:
    """SSE chunks. Free text streams as generated; a structured output or tool calls are
    validated first and sent once they met their contract."""
    created = int(time.time())
    head = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk",
            "created": created, "model": call.model}  # fmt: skip

    def event(payload: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps({**head, **payload}) + b"\n\n"

    def delta(
        content: dict[str, Any],
        finish: str | None = None,
        *,
        index: int = 0,
        logprobs: dict[str, Any] | None = None,
    ) -> bytes:
        choice = {"index": index, "delta": content, "logprobs": logprobs, "finish_reason": finish}
        return event({"choices": [choice]})

    parts: list[str] = []
    try:
        opening = {"role": "assistant", "content": None if chat.tools else ""}
        for index in range(chat.n):
            yield delta(opening, index=index)
        if _streams_text(plan, chat):
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
        else:
            results = await run_choices(plan, chat.n)
            merged = _merged(results)
            gateway.record_result(call, merged, merged.output)
            usage = merged.usage
            for index, result in enumerate(results):
                for content, logprobs in result_deltas(result):
                    yield delta(content, index=index, logprobs=logprobs)
                yield delta({}, finish_reason(result), index=index)
        if chat.include_usage:
            yield event({"choices": [], "usage": usage_body(usage)})
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
