"""One exception tree for everything tether raises on purpose.

    TetherError                      base: a message plus a `fix` telling the user what to do
    ├── ConfigError                  a settings file or value is wrong (file, field)
    ├── ModelNotFound                a model name that no settings entry defines
    ├── ProviderError                a provider could not produce a completion (provider, model)
    │   ├── MissingApiKey            the environment variable holding the key is unset
    │   ├── ProviderUnavailable      the server cannot be reached or timed out (url)
    │   ├── DeadlineExceeded         the request's deadline passed during this attempt
    │   ├── CircuitOpen              skipped: its recent calls failed (retry_after_s)
    │   ├── ProviderRejected         the server refused the call (status)
    │   ├── ContextWindowExceeded    the prompt plus the output budget do not fit the model
    │   └── ModelFileError           a local model file is missing or corrupt (path)
    ├── ContractError                the output contract cannot be met
    │   ├── SchemaError              the schema itself is malformed (source, pointer)
    │   ├── UnsupportedSchema        the chosen provider cannot honour the schema
    │   └── ContractViolation        repair was exhausted; carries every attempt
    ├── PromptError                  prompts as code
    │   ├── SpecError                a prompt spec file is wrong (file, line, field)
    │   ├── PromptNotFound           no such prompt, version or label
    │   ├── VersionConflict          that version exists with other content
    │   ├── IncompatibleChange       the version bump is too small for the change (report)
    │   ├── NothingToRollBack        a rollback would leave the label where it is
    │   └── RenderError              inputs or template failed at render time
    ├── DatabaseUnavailable          the store cannot be reached (url, password hidden)
    ├── InvalidRequest               a malformed HTTP request body (param, status 400, 413 or 415)
    └── AccessError                  the gateway refuses a caller
        ├── InvalidKey               missing, unknown, malformed or revoked API key
        ├── AdminRequired            admin routes without the admin token (none set, or not sent)
        ├── CrossOrigin              a cookie-authenticated change sent from another origin
        ├── UntrustedHost            a Host header outside server.trusted_hosts
        ├── KeyNotFound              no key with that id (admin)
        ├── KeyScopeError            the key may not use that model or prompt
        ├── LimitExceeded            a request or token rate limit (retry_after_s)
        │   └── LoginThrottled       too many failed admin credentials from one client or all
        └── BudgetExhausted          a key's or prompt's money budget is spent (scope)

Every error carries structured fields so callers (the CLI, the gateway) never parse messages.
An error that ends a request after provider calls carries them in `attempts`: they were billed.
Messages never contain secrets: keys are named by the variable that holds them, never shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tether.costs.limits.quota import Quota
    from tether.messages import Usage
    from tether.result import Attempt


class TetherError(Exception):
    """Base of every error tether raises on purpose."""

    # The provider calls a request made before it failed (the failed one last), attached by the
    # engine: each was billed, so the caller still records and charges them.
    attempts: tuple[Attempt, ...] = ()

    def __init__(self, message: str, *, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class ConfigError(TetherError):
    def __init__(self, message: str, *, file: str | None, field: str | None, fix: str) -> None:
        where = f"{file}: " if file else ""
        what = f"{field}: " if field else ""
        super().__init__(f"{where}{what}{message}", fix=fix)
        self.file = file
        self.field = field


class ModelNotFound(TetherError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"unknown model {name!r} (configured: {listed})",
            fix="use one of the configured names, or add a [models.<name>] table to tether.toml",
        )
        self.name = name
        self.known = tuple(known)


class ProviderError(TetherError):
    # What the provider reported billing for the failed call itself (a stream cut after its
    # usage arrived), or None when it said nothing.
    usage: Usage | None = None
    # How long the upstream asked us to wait before trying again (its Retry-After), if it did.
    retry_after_s: float | None = None

    def __init__(self, message: str, *, provider: str, model: str, fix: str = "") -> None:
        super().__init__(f"{provider}/{model}: {message}", fix=fix)
        self.provider = provider
        self.model = model


class MissingApiKey(ProviderError):
    def __init__(self, *, provider: str, model: str, env_var: str) -> None:
        super().__init__(
            f"no API key: environment variable {env_var} is not set",
            provider=provider,
            model=model,
            fix=f"export {env_var}=... or set api_key_env in the model's settings",
        )
        self.env_var = env_var


class ProviderUnavailable(ProviderError):
    def __init__(self, *, provider: str, model: str, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach {url}: {reason}",
            provider=provider,
            model=model,
            fix="check that the server is running and base_url is right, or pick another model",
        )
        self.url = url
        self.timed_out = reason == "timed out"


class DeadlineExceeded(ProviderError):
    def __init__(self, *, provider: str, model: str, deadline_s: float) -> None:
        super().__init__(
            f"no answer within the request's deadline of {deadline_s:g} s",
            provider=provider,
            model=model,
            fix="raise the request's timeout (or calls.deadline_s), or lower max_tokens",
        )


class CircuitOpen(ProviderError):
    def __init__(self, *, provider: str, model: str, retry_in_s: float) -> None:
        super().__init__(
            f"not called: its last calls failed, so its circuit is open for {retry_in_s:.1f} s",
            provider=provider,
            model=model,
            fix="configure fallbacks for this model, or wait for the upstream to recover",
        )
        self.retry_after_s = retry_in_s


class ProviderRejected(ProviderError):
    def __init__(
        self, *, provider: str, model: str, status: int | None, reason: str, fix: str = ""
    ) -> None:
        super().__init__(
            f"request refused (status {status}): {reason}",
            provider=provider,
            model=model,
            fix=fix or "read the reason above; the request was not retried",
        )
        self.status = status


class ContextWindowExceeded(ProviderError):
    def __init__(
        self, *, provider: str, model: str, prompt_tokens: int, max_tokens: int, context_window: int
    ) -> None:
        super().__init__(
            f"prompt of {prompt_tokens} tokens plus {max_tokens} output tokens exceeds the "
            f"context window of {context_window} tokens",
            provider=provider,
            model=model,
            fix="shorten the prompt or few-shot examples, lower max_tokens, or raise "
            "context_window in the model's settings (up to what the model supports)",
        )
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.context_window = context_window


class ModelFileError(ProviderError):
    def __init__(self, message: str, *, provider: str, model: str, path: str, fix: str) -> None:
        super().__init__(f"{path}: {message}", provider=provider, model=model, fix=fix)
        self.path = path


class ContractError(TetherError):
    """The output contract cannot be met."""


class SchemaError(ContractError):
    def __init__(self, message: str, *, source: str, pointer: str = "", fix: str = "") -> None:
        at = f" at {pointer}" if pointer else ""
        super().__init__(
            f"{source}: invalid JSON Schema{at}: {message}",
            fix=fix or "correct the schema so that it validates against its JSON Schema draft",
        )
        self.source = source
        self.pointer = pointer


@dataclass(frozen=True)
class SchemaProblem:
    """One schema keyword a provider cannot honour, and why."""

    keyword: str
    pointer: str
    reason: str


class UnsupportedSchema(ContractError):
    def __init__(self, *, provider: str, model: str, problems: Sequence[SchemaProblem]) -> None:
        lines = "; ".join(f"{p.keyword} at {p.pointer or '/'}: {p.reason}" for p in problems)
        super().__init__(
            f"{provider}/{model} cannot honour this schema: {lines}",
            fix="remove or rewrite the keywords named above, or choose a model whose provider "
            "supports them (`tether models` lists capabilities)",
        )
        self.provider = provider
        self.model = model
        self.problems = tuple(problems)


class ContractViolation(ContractError):
    def __init__(self, *, contract: str, attempts: Sequence[Attempt]) -> None:
        last = attempts[-1]
        shown = "; ".join(last.errors[:3])
        super().__init__(
            f"output did not meet contract {contract!r} after {len(attempts)} attempt(s): {shown}",
            fix="raise max_repairs, simplify the schema, improve the prompt, or use a stronger "
            "model; `attempts` holds every raw output",
        )
        self.contract = contract
        self.attempts = tuple(attempts)
        self.last_raw = last.raw


class PromptError(TetherError):
    """Prompts as code: specs, the registry, rendering."""


class SpecError(PromptError):
    def __init__(
        self, message: str, *, file: str, line: int | None = None, field: str = "", fix: str = ""
    ) -> None:
        where = f"{file}:{line}" if line else file
        what = f" {field}:" if field else ""
        super().__init__(f"{where}:{what} {message}", fix=fix or "correct the field and retry")
        self.file = file
        self.line = line
        self.field = field


class PromptNotFound(PromptError):
    def __init__(self, name: str, *, version: str | None = None, label: str | None = None) -> None:
        what = f"{name!r}" + (f" version {version}" if version else "")
        what += f" label {label!r}" if label else ""
        super().__init__(
            f"no prompt {what} in the registry",
            fix="push it with `tether prompts push`, or check `tether prompts list`",
        )
        self.name = name
        self.version = version
        self.label = label


class VersionConflict(PromptError):
    def __init__(self, name: str, version: str) -> None:
        super().__init__(
            f"{name!r} {version} already exists with different content; versions are immutable",
            fix="bump the version in the spec file and push again",
        )
        self.name = name
        self.version = version


class IncompatibleChange(PromptError):
    def __init__(
        self, name: str, version: str, *, needed: str, previous: str, reasons: Sequence[str]
    ) -> None:
        listed = "; ".join(reasons)
        super().__init__(
            f"{name!r} {version} needs a {needed} version bump over {previous}: {listed}",
            fix=f"set the version to at least the next {needed} version, or undo the change",
        )
        self.name = name
        self.version = version
        self.needed = needed
        self.previous = previous
        self.reasons = tuple(reasons)


class NothingToRollBack(PromptError):
    def __init__(self, name: str, label: str, *, current: str | None, reason: str) -> None:
        super().__init__(
            f"cannot roll back {name!r} label {label!r}: {reason}",
            fix="move the label to the version you want with `tether prompts label`",
        )
        self.name = name
        self.label = label
        self.current = current


class RenderError(PromptError):
    def __init__(self, name: str, message: str, *, fix: str) -> None:
        super().__init__(f"prompt {name!r}: {message}", fix=fix)
        self.name = name


class DatabaseUnavailable(TetherError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"database {url} unavailable: {reason}",
            fix="check database_url in the settings and that the server is running",
        )
        self.url = url


class AccessError(TetherError):
    """The gateway refuses a caller."""


class InvalidKey(AccessError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason, fix="send `Authorization: Bearer tk-...` with a valid key")


class AdminRequired(AccessError):
    def __init__(self, reason: str, *, fix: str) -> None:
        super().__init__(reason, fix=fix)


class CrossOrigin(AccessError):
    def __init__(self) -> None:
        super().__init__(
            "a cookie-authenticated change must come from the gateway's own pages",
            fix="send it from the dashboard itself, or use `Authorization: Bearer <admin token>`",
        )


class UntrustedHost(AccessError):
    def __init__(self) -> None:
        super().__init__(
            "the Host header names a host this gateway does not serve",
            fix="add the host name to [server] trusted_hosts in tether.toml (`*` for any)",
        )


class KeyNotFound(AccessError):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key {key_id!r}", fix="list keys with `tether keys list`")


class KeyScopeError(AccessError):
    def __init__(self, what: str, name: str) -> None:
        super().__init__(
            f"this key may not use {what} {name!r}",
            fix="use a key scoped to it, or widen the key's scope",
        )


class LimitExceeded(AccessError):
    # What is left of the caller's rate limits, when the store that refused knows it.
    quota: Quota | None = None

    def __init__(self, what: str, *, retry_after_s: float) -> None:
        super().__init__(what, fix=f"retry after {retry_after_s:.0f} s or raise the key's limit")
        self.retry_after_s = retry_after_s


class LoginThrottled(LimitExceeded):
    def __init__(self, *, retry_after_s: float) -> None:
        super().__init__("too many failed admin credentials", retry_after_s=retry_after_s)
        self.fix = f"retry after {retry_after_s:.0f} s with the right admin token"


class BudgetExhausted(AccessError):
    """A money budget has no room for the request: `scope` names whose ("key:<id>" or
    "prompt:<name>"), `period` and `bucket` which one ("month", "2026-12")."""

    def __init__(
        self,
        *,
        scope: str,
        period: str,
        spent_usd: float,
        limit_usd: float,
        fix: str,
        bucket: str = "total",
    ) -> None:
        which = "total budget" if period == "total" else f"budget for {period} {bucket}"
        super().__init__(
            f"{scope} has spent ${spent_usd:.4f} of its ${limit_usd:.4f} {which}", fix=fix
        )
        self.scope = scope
        self.period = period
        self.bucket = bucket
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd


class InvalidRequest(TetherError):
    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        status: int = 400,
        fix: str = "correct the request body (OpenAI chat completions format)",
    ) -> None:
        super().__init__(message, fix=fix)
        self.param = param
        self.status = status


def no_embeddings(provider: str, model: str) -> ProviderError:
    return ProviderError(
        "this model has no embeddings", provider=provider, model=model, fix="use an embedding model"
    )
