"""One place that maps tether's errors to HTTP statuses and OpenAI-style error bodies.

Bodies carry the error's own message and fix, which never contain secrets (see errors.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson
from fastapi import Request
from starlette.responses import Response

from tether import errors as e
from tether.statuses import status_code

if TYPE_CHECKING:
    from tether.pipeline.context import Context

REQUEST_ID_HEADER = "x-tether-request-id"
log = logging.getLogger("tether.server")


def error_body(message: str, error_type: str, code: str, param: str | None = None) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


def error_response(exc: e.TetherError, request_id: str | None = None) -> Response:
    status, error_type, code = status_code(exc)
    message = f"{exc.message} (fix: {exc.fix})" if exc.fix else exc.message
    param = exc.param if isinstance(exc, e.InvalidRequest) else None
    headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
    if isinstance(exc, e.LimitExceeded):
        headers["retry-after"] = str(max(1, round(exc.retry_after_s)))
    return Response(
        error_body(message, error_type, code, param),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _unrecorded(request: Request) -> Context | None:
    ctx: Context | None = getattr(request.state, "ctx", None)
    return ctx if ctx is not None and not ctx.recorded else None


async def handle_tether_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.TetherError)
    ctx = _unrecorded(request)
    if ctx is not None:  # refused before the pipeline ran: its row is written here
        ctx.fail(exc)
        await request.app.state.gateway.record(ctx)
    response = error_response(exc, getattr(request.state, "request_id", None))
    if isinstance(exc, e.LimitExceeded) and exc.quota is not None:
        response.headers.update(exc.quota.headers())
    return response


async def handle_http_error(request: Request, exc: Exception) -> Response:
    """Routing errors (unknown path, wrong method) in OpenAI's error format."""
    status = getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "error"))
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    return Response(
        error_body(detail, "invalid_request_error", code),
        status_code=status,
        media_type="application/json",
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: log it with its traceback, answer 500 without details (they could hold data)."""
    request_id = getattr(request.state, "request_id", None)
    log.exception("unexpected error in request %s", request_id)
    ctx = _unrecorded(request)
    if ctx is not None:
        ctx.fail(exc, 500)
        await request.app.state.gateway.record(ctx)
    headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
    return Response(
        error_body("internal error; see the gateway log", "api_error", "internal_error"),
        status_code=500,
        media_type="application/json",
        headers=headers,
    )
