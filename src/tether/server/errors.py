"""One place that maps tether's errors to HTTP statuses and OpenAI-style error bodies.

Bodies carry the error's own message and fix, which never contain secrets (see errors.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson
from fastapi import Request
from starlette.responses import Response

from tether import errors as e

if TYPE_CHECKING:
    from tether.server.gateway import CallRecord

REQUEST_ID_HEADER = "x-tether-request-id"
log = logging.getLogger("tether.server")

# (status, OpenAI error type, code) per error class; the most specific class wins.
_STATUS: list[tuple[type[e.TetherError], int, str, str]] = [
    (e.InvalidKey, 401, "authentication_error", "invalid_api_key"),
    (e.AdminRequired, 401, "authentication_error", "admin_required"),
    (e.CrossOrigin, 403, "permission_error", "cross_origin"),
    (e.UntrustedHost, 400, "invalid_request_error", "untrusted_host"),
    (e.KeyScopeError, 403, "permission_error", "key_scope"),
    (e.KeyNotFound, 404, "invalid_request_error", "key_not_found"),
    (e.BudgetExhausted, 429, "insufficient_quota", "budget_exhausted"),
    (e.LimitExceeded, 429, "rate_limit_error", "rate_limit_exceeded"),
    (e.ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (e.PromptNotFound, 404, "invalid_request_error", "prompt_not_found"),
    (e.VersionConflict, 409, "invalid_request_error", "version_conflict"),
    (e.IncompatibleChange, 409, "invalid_request_error", "incompatible_change"),
    (e.NothingToRollBack, 409, "invalid_request_error", "nothing_to_roll_back"),
    (e.ContextWindowExceeded, 400, "invalid_request_error", "context_length_exceeded"),
    (e.ContractViolation, 422, "invalid_response_error", "contract_violation"),
    (e.SchemaError, 400, "invalid_request_error", "invalid_schema"),
    (e.UnsupportedSchema, 400, "invalid_request_error", "unsupported_schema"),
    (e.SpecError, 400, "invalid_request_error", "invalid_spec"),
    (e.RenderError, 400, "invalid_request_error", "render_error"),
    (e.ProviderUnavailable, 502, "api_error", "upstream_unavailable"),
    (e.ProviderRejected, 502, "api_error", "upstream_rejected"),
    (e.MissingApiKey, 502, "api_error", "upstream_key_missing"),
    (e.ModelFileError, 503, "api_error", "model_file"),
    # Any other upstream fault (invalid JSON, a cut stream): the upstream's, not ours.
    (e.ProviderError, 502, "api_error", "upstream_error"),
    (e.DatabaseUnavailable, 503, "api_error", "database_unavailable"),
]


def status_code(exc: e.TetherError) -> tuple[int, str, str]:
    if isinstance(exc, e.InvalidRequest):
        code = {413: "request_too_large", 415: "unsupported_media_type"}.get(
            exc.status, "invalid_request"
        )
        return exc.status, "invalid_request_error", code
    if isinstance(exc, e.ProviderRejected) and exc.status == 429:
        return 429, "rate_limit_error", "upstream_rate_limited"
    if isinstance(exc, e.ProviderUnavailable) and exc.timed_out:
        return 504, "api_error", "upstream_timeout"
    for kind, status, error_type, code in _STATUS:
        if isinstance(exc, kind):
            return status, error_type, code
    return 500, "api_error", "internal_error"


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


def _unrecorded_call(request: Request) -> CallRecord | None:
    call: CallRecord | None = getattr(request.state, "call", None)
    return call if call is not None and not call.recorded else None


async def handle_tether_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, e.TetherError)
    call = _unrecorded_call(request)
    if call is not None:
        gateway = request.app.state.gateway
        gateway.record_error(call, exc, status_code(exc)[0])
        if isinstance(exc, e.LimitExceeded) and call.key is not None:
            call.quota = gateway.limiter.quota(call.key)
    response = error_response(exc, getattr(request.state, "request_id", None))
    if call is not None and call.quota is not None:
        response.headers.update(call.quota.headers())
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
    call = _unrecorded_call(request)
    if call is not None:
        request.app.state.gateway.record_outcome(
            call, 500, f"internal error ({type(exc).__name__}); see the gateway log"
        )
    headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
    return Response(
        error_body("internal error; see the gateway log", "api_error", "internal_error"),
        status_code=500,
        media_type="application/json",
        headers=headers,
    )
