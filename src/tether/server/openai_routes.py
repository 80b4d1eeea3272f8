"""OpenAI-compatible routes: chat completions (plain and SSE), models, embeddings.

Each route only translates HTTP to a pipeline call and back: everything between (scopes,
limits, routing, fallbacks, validation, recording, settling) is the pipeline's. Handlers take
the raw Request and return Response objects built with orjson: no per-request dependency
injection or response-model validation on the hot path.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from tether.costs.accounting import charged
from tether.errors import InvalidRequest, TetherError
from tether.pipeline.context import Ask, Context
from tether.server.api_docs import ChatCompletionBody, EmbeddingsBody, body_doc
from tether.server.bodies import ChatRequest, chat_request, read_json
from tether.server.chat_response import (
    choices_body,
    finish_reason,
    result_deltas,
    usage_body,
)
from tether.server.embedding_bodies import (
    embedding_inputs,
    encode,
    encoding_format,
    requested_dimensions,
)
from tether.server.errors import error_body
from tether.server.gateway import Gateway, cache_use, completed, headers
from tether.server.keys import KEY_PREFIX
from tether.statuses import status_code

router = APIRouter()
log = logging.getLogger("tether.server")

JSON = "application/json"


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def start_call(
    request: Request, endpoint: str, *, admin_allowed: bool = False
) -> tuple[Gateway, Context]:
    """Name the request, authenticate the caller: a virtual key, or (where `admin_allowed`)
    the admin token."""
    gateway = _gateway(request)
    ctx = gateway.begin(request, endpoint)
    if admin_allowed and _presents_admin_token(request):
        request.app.state.auth.require(request)
        ctx.admin = True
        return gateway, ctx
    key = gateway.authenticate(request)
    use = cache_use(request)
    if key is not None or use != "use":
        ctx.ask = Ask(endpoint, key=key, cache=use)
    return gateway, ctx


def _presents_admin_token(request: Request) -> bool:
    """A bearer credential that is not shaped like a virtual key is meant as the admin token
    (checking keys against the admin token would count them as failed admin logins)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and not value.strip().startswith(KEY_PREFIX)


def _completion_body(ctx: Context) -> dict[str, Any]:
    first = ctx.results[0]
    usage, cost = charged(tuple(ctx.attempts))
    return {
        "id": f"chatcmpl-{ctx.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ctx.model,
        "choices": choices_body(ctx.results),
        "usage": usage_body(usage),
        "tether": {
            "request_id": ctx.request_id,
            "provider": first.provider,
            "upstream_model": first.model,
            "attempts": len(ctx.attempts),
            "cost_usd": cost,
            "contract": ctx.contract_name,
            "route": ctx.route.reason if ctx.route is not None else None,
        },
    }


@router.post("/v1/chat/completions", openapi_extra=body_doc(ChatCompletionBody))
async def chat_completions(request: Request) -> Response:
    gateway, ctx = start_call(request, "chat.completions")
    chat = chat_request(await read_json(request, gateway.settings.server.max_body_bytes))
    contract = (
        gateway.client.contract(chat.schema, name=chat.schema_name)
        if chat.schema is not None
        else None
    )
    fields: dict[str, Any] = dict(
        messages=chat.messages,
        model=chat.model,
        contract=contract,
        tools=chat.tools,
        params=chat.params,
        n=chat.n,
        stream=chat.stream,
    )
    if chat.stream:
        return await _streamed(gateway, ctx, chat, fields)
    await gateway.run(ctx, **fields)
    return Response(orjson.dumps(_completion_body(ctx)), media_type=JSON, headers=headers(ctx))


async def _streamed(
    gateway: Gateway, ctx: Context, chat: ChatRequest, fields: dict[str, Any]
) -> Response:
    """Run the pipeline up to its first piece of text before answering: a request refused or
    failed before anything was generated gets its own HTTP status, like a plain one."""
    ctx.ask = completed(ctx, **fields)
    pieces = gateway.runtime.pipeline.stream(ctx)
    try:
        first: str | None = await anext(pieces)
    except StopAsyncIteration:
        first = None  # a whole (validated) result, or an empty completion
    return StreamingResponse(
        _events(ctx, chat, pieces, first),
        media_type="text/event-stream",
        headers=headers(ctx, **{"cache-control": "no-cache"}),
    )


async def _events(
    ctx: Context, chat: ChatRequest, pieces: AsyncIterator[str], first: str | None
) -> AsyncIterator[bytes]:
    """SSE chunks. Free text streams as generated; a structured output or tool calls are
    validated first and sent once they met their contract."""
    created = int(time.time())
    head = {"id": f"chatcmpl-{ctx.request_id}", "object": "chat.completion.chunk",
            "created": created, "model": ctx.model}  # fmt: skip

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

    # Closing this generator (the client hung up) closes the pipeline's: its row says so.
    async with contextlib.aclosing(pieces):  # type: ignore[type-var]
        try:
            opening = {"role": "assistant", "content": None if chat.tools else ""}
            for index in range(chat.n):
                yield delta(opening, index=index)
            if first is not None:
                yield delta({"content": first})
                async for piece in pieces:
                    yield delta({"content": piece})
                yield delta({}, finish_reason(ctx.results[0]))
            else:
                for index, result in enumerate(ctx.results):
                    for content, logprobs in result_deltas(result):
                        yield delta(content, index=index, logprobs=logprobs)
                    yield delta({}, finish_reason(result), index=index)
            if chat.include_usage:
                usage, _ = charged(tuple(ctx.attempts))
                yield event({"choices": [], "usage": usage_body(usage)})
        except TetherError as exc:
            # Headers are sent: the error travels as a terminal event; the row is recorded.
            _, error_type, code = status_code(exc)
            yield b"data: " + error_body(exc.message, error_type, code) + b"\n\n"
        except Exception:
            log.exception("unexpected error in stream %s", ctx.request_id)
            yield (
                b"data: "
                + error_body("internal error; see the gateway log", "api_error", "internal_error")
                + b"\n\n"
            )
    yield b"data: [DONE]\n\n"


@router.get("/v1/models")
async def list_models(request: Request) -> Response:
    gateway = _gateway(request)
    key = gateway.authenticate(request)
    names = [info.name for info in gateway.client.models()]
    names += [f"router:{name}" for name in gateway.settings.routers]
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": _owner(gateway, name)}
        for name in names
        if key is None or key.allows_model(name)
    ]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)


def _owner(gateway: Gateway, name: str) -> str:
    configured = gateway.settings.models.get(name)
    return configured.provider if configured is not None else "tether"


@router.post("/v1/embeddings", openapi_extra=body_doc(EmbeddingsBody))
async def embeddings(request: Request) -> Response:
    gateway, ctx = start_call(request, "embeddings")
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    texts = embedding_inputs(body)
    fmt, dimensions = encoding_format(body), requested_dimensions(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("`model` must be a non-empty string", param="model")
    params = {"dimensions": dimensions} if dimensions is not None else {}
    await gateway.run(ctx, operation="embed", model=model, texts=tuple(texts), params=params)
    vectors = ctx.embeddings or []
    usage, _ = charged(tuple(ctx.attempts))
    payload = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(v, fmt)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
    }
    return Response(orjson.dumps(payload), media_type=JSON, headers=headers(ctx))
