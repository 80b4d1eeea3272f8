"""Map the exceptions of the official OpenAI and Anthropic SDKs onto tether's tree.

Both SDKs share one exception design (connection errors, status errors with a status code),
so one function serves both; it matches on classes and status codes, never on message text.
"""

from __future__ import annotations

from types import ModuleType

from tether.errors import ProviderError, ProviderRejected, ProviderUnavailable
from tether.providers.retry_after import retry_after
from tether.redact import redact

_FIXES = {
    401: "check the API key held in {key_env}",
    403: "the key lacks access to this model; use another key or model",
    404: "the upstream does not know model {model!r}; check upstream_model in the settings",
    413: "the request is too large; shorten the prompt",
    429: "rate limited upstream; retry later or lower the request rate",
}


def fix_for(status: int, *, key_env: str | None, model: str) -> str:
    """What to do about an upstream HTTP status."""
    return _FIXES.get(status, "").format(key_env=key_env or "the model's api_key_env", model=model)


def translate(
    exc: Exception,
    sdk: ModuleType,
    *,
    provider: str,
    model: str,
    url: str,
    key_env: str | None,
    secret: str | None,
) -> ProviderError | None:
    """The tether error for an SDK exception, or None when it is not an SDK API error."""
    if isinstance(exc, sdk.APIConnectionError):
        reason = "timed out" if isinstance(exc, sdk.APITimeoutError) else "connection failed"
        return ProviderUnavailable(provider=provider, model=model, url=url, reason=reason)
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        reason = redact(str(getattr(exc, "message", exc)), [secret or ""])
        fix = fix_for(status, key_env=key_env, model=model)
        if status == 400 and getattr(exc, "code", None) == "context_length_exceeded":
            fix = "shorten the prompt or lower max_tokens"
        rejected = ProviderRejected(
            provider=provider, model=model, status=status, reason=reason, fix=fix
        )
        response = getattr(exc, "response", None)
        if response is not None:
            rejected.retry_after_s = retry_after(response.headers.get("retry-after"))
        return rejected
    return None
