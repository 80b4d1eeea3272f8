"""The HTTP status (and OpenAI error type and code) each error answers with: the gateway's
responses use it, and so does every request-log row, whichever entry point made the call."""

from __future__ import annotations

from tether import errors as e

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
    (e.CircuitOpen, 503, "api_error", "circuit_open"),
    (e.DeadlineExceeded, 504, "api_error", "deadline_exceeded"),
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
