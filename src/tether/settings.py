"""Settings: the only place that reads configuration files and environment variables.

Sources, later ones winning: built-in defaults, the TOML file (``tether.toml`` in the working
directory, or the path in ``TETHER_CONFIG``), then ``TETHER_*`` environment variables for the
top-level fields. API keys are read here from the variable each model names and kept as secrets.
"""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from tether.cache.config import CacheSettings
from tether.costs.limits.config import LimitSettings, PromptBudgets
from tether.errors import ConfigError
from tether.evals.production import EvaluationSettings
from tether.observe.config import ObserveSettings
from tether.routing.config import RouterSettings

CONFIG_ENV = "TETHER_CONFIG"
DEFAULT_CONFIG_FILE = "tether.toml"
# Built-in models, always defined: an instruction-tuned chat model, a smaller base model for
# few-shot prompts, and the sentence embedder (see providers/gguf_file.py, local_embed.py).
LOCAL_MODEL_NAME = "local"
LOCAL_MODEL_UPSTREAM = "qwen2.5-coder-0.5b-instruct"
LOCAL_SMALL_MODEL_NAME = "local-small"
LOCAL_SMALL_MODEL_UPSTREAM = "gemma-3-270m"
LOCAL_EMBED_MODEL_NAME = "local-embed"
LOCAL_EMBED_MODEL_UPSTREAM = "all-MiniLM-L6-v2"
# Packages a prompt spec's `output.model` may be imported from: the prompts directory's package.
DEFAULT_PROMPT_MODEL_MODULES = ("prompts",)
_CONVENTIONAL_KEY_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
_ENV_FIELDS = {
    "TETHER_DEFAULT_MODEL": "default_model",
    "TETHER_CACHE_DIR": "cache_dir",
    "TETHER_MAX_REPAIRS": "max_repairs",
    "TETHER_DATA_DIR": "data_dir",
    "TETHER_DATABASE_URL": "database_url",
    "TETHER_ACTOR": "actor",
    "TETHER_ADMIN_TOKEN": "server.admin_token",
    "TETHER_REQUIRE_KEYS": "server.require_keys",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceSettings(_Strict):
    """Money per million tokens, in USD. Cached input and cache writes cost the input price
    unless their own price is set (no discount or surcharge is assumed)."""

    input_per_million: float = Field(default=0.0, ge=0)
    output_per_million: float = Field(default=0.0, ge=0)
    cached_input_per_million: float | None = Field(
        default=None, ge=0, description="input tokens read from the provider's prompt cache"
    )
    cache_write_per_million: float | None = Field(
        default=None, ge=0, description="input tokens written to the prompt cache (Anthropic)"
    )

    @property
    def cached_input_rate(self) -> float:
        if self.cached_input_per_million is None:
            return self.input_per_million
        return self.cached_input_per_million

    @property
    def cache_write_rate(self) -> float:
        if self.cache_write_per_million is None:
            return self.input_per_million
        return self.cache_write_per_million


SamplingParam = Literal[
    "seed", "stop", "top_p", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
    "top_logprobs",
]  # fmt: skip


class CapabilityOverrides(_Strict):
    """Override what a provider declares, for servers that support less (or more)."""

    supports_json_schema: bool | None = None
    supports_grammar: bool | None = None
    supports_tools: bool | None = None
    can_stream: bool | None = None
    schema_in_json_object: bool | None = None
    supports_embeddings: bool | None = None
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = Field(
        default=None,
        description="the output budget's field in OpenAI-compatible requests; default: "
        "max_completion_tokens for api.openai.com, max_tokens elsewhere",
    )
    engine: Literal["openai", "anthropic", "vllm", "llama-server", "ollama", "generic"] | None = (
        Field(
            default=None,
            description="the server behind an OpenAI-compatible URL, whose schema rules apply; "
            "default: openai for api.openai.com, generic elsewhere",
        )
    )
    sampling_params: frozenset[SamplingParam] | None = Field(
        default=None,
        description="the optional sampling fields the server honours; a request setting "
        "another is refused (400 naming the field)",
    )
    supports_n: bool | None = Field(
        default=None, description="the server returns `n` choices from one call"
    )


class ModelSettings(_Strict):
    provider: str = Field(
        description="provider kind: openai, anthropic, llamacpp, local_embed or fake"
    )
    upstream_model: str | None = Field(
        default=None, description="the model id the provider knows; defaults to the entry's name"
    )
    base_url: str | None = None
    api_key_env: str | None = Field(
        default=None, description="environment variable that holds the API key"
    )
    api_key: SecretStr | None = Field(default=None, exclude=True)
    timeout_s: float = Field(default=60.0, gt=0, description="one attempt's time limit")
    max_retries: int = Field(
        default=2, ge=0, le=10, description="retries after a transient upstream fault"
    )
    fallbacks: list[str] = Field(
        default_factory=list,
        description="models tried in order when this one fails, times out, has its circuit "
        "open or cannot meet the contract after repairs",
    )
    path: Path | None = Field(default=None, description="GGUF file for llamacpp")
    sha256: str | None = Field(default=None, description="expected sha256 of the GGUF file")
    context_window: int | None = Field(default=None, gt=0)
    threads: int | None = Field(default=None, gt=0)
    price: PriceSettings = PriceSettings()
    capabilities: CapabilityOverrides = CapabilityOverrides()

    @model_validator(mode="before")
    @classmethod
    def _default_key_variable(cls, data: Any) -> Any:
        # Hosted APIs need a key; name the conventional variable unless told otherwise.
        if isinstance(data, dict):
            conventional = _CONVENTIONAL_KEY_VARS.get(str(data.get("provider")))
            if conventional and data.get("api_key_env") is None and data.get("base_url") is None:
                return {**data, "api_key_env": conventional}
        return data

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        from tether.providers.registry import PROVIDER_KINDS

        if value not in PROVIDER_KINDS:
            raise ValueError(f"unknown provider {value!r}; choose one of {sorted(PROVIDER_KINDS)}")
        return value


class ServerSettings(_Strict):
    """The gateway (`tether serve`)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    require_keys: bool = Field(default=True, description="refuse /v1 calls without a key")
    admin_token: SecretStr | None = Field(
        default=None,
        description="bearer token for /admin and the dashboard; unset: nobody is admin, except "
        "that `tether serve` keeps a generated one in <data_dir>/admin_token",
    )
    trusted_hosts: tuple[str, ...] | None = Field(
        default=None,
        description="Host header names served (ports ignored; `*` for any); "
        "default: 127.0.0.1, localhost, ::1 and `host`",
    )
    forwarded_allow_ips: tuple[str, ...] = Field(
        default=(),
        description="reverse proxies (IPs or CIDRs) whose X-Forwarded-For/-Proto are believed; "
        "default: none, so the client address is the TCP peer",
    )
    log_retention_days: int | None = Field(default=None, gt=0)
    spool_max_mb: int = Field(default=256, gt=0)
    graceful_shutdown_s: float = Field(default=30.0, gt=0)

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty token would match an empty `Bearer ` header; a short one is guessable.
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("needs at least 16 characters (or leave it unset)")
        return value


class CallSettings(_Strict):
    """How the request pipeline calls models: retries, circuit breakers, deadlines."""

    deadline_s: float = Field(
        default=300.0, gt=0, description="one request's time limit across every attempt"
    )
    retry_base_s: float = Field(default=0.5, ge=0, description="first backoff, doubled each retry")
    retry_cap_s: float = Field(default=8.0, ge=0, description="longest backoff")
    circuit_failures: int = Field(
        default=5, gt=0, description="failed calls in a row that open a model's circuit"
    )
    circuit_cooldown_s: float = Field(
        default=30.0, gt=0, description="how long an open circuit skips its model"
    )
    record_requests: bool = Field(
        default=True,
        description="library and CLI calls write the request log too (the gateway always does)",
    )


def _default_models() -> dict[str, ModelSettings]:
    return {
        LOCAL_MODEL_NAME: ModelSettings(provider="llamacpp", upstream_model=LOCAL_MODEL_UPSTREAM),
        LOCAL_SMALL_MODEL_NAME: ModelSettings(
            provider="llamacpp", upstream_model=LOCAL_SMALL_MODEL_UPSTREAM
        ),
        LOCAL_EMBED_MODEL_NAME: ModelSettings(
            provider="local_embed", upstream_model=LOCAL_EMBED_MODEL_UPSTREAM
        ),
    }


class Settings(_Strict):
    default_model: str = LOCAL_MODEL_NAME
    cache_dir: Path = Field(default_factory=lambda: Path.home() / ".cache" / "tether")
    max_repairs: int = Field(default=2, ge=0, le=10)
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "tether")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir"
    )
    actor: str = Field(
        default_factory=getpass.getuser, description="who pushes prompts and moves labels"
    )
    models: dict[str, ModelSettings] = Field(default_factory=_default_models)
    prompt_model_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PROMPT_MODEL_MODULES),
        description="modules (and the packages below them) that a prompt spec's `output.model` "
        "may be imported from; nothing else is ever imported",
    )
    routers: dict[str, RouterSettings] = Field(
        default_factory=dict,
        description='routing policies by name; a call picks one with model="router:NAME"',
    )
    server: ServerSettings = ServerSettings()
    limits: LimitSettings = LimitSettings()
    budgets: PromptBudgets = Field(
        default_factory=list, description="money budgets per prompt, whatever the key"
    )
    calls: CallSettings = CallSettings()
    evaluations: list[EvaluationSettings] = Field(
        default_factory=list, description="checks on a sample of each prompt's logged requests"
    )
    cache: CacheSettings = Field(
        default_factory=CacheSettings, description="the response cache (exact and semantic)"
    )
    observe: ObserveSettings = Field(
        default_factory=ObserveSettings, description="per-request signals, off the response path"
    )
    source: str = Field(default="defaults", exclude=True)

    @classmethod
    def load(
        cls, path: str | Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Read the config file (if any) and the environment; validate everything once."""
        env = os.environ if environ is None else environ
        file = Path(path) if path is not None else _config_path(env)
        data: dict[str, Any] = _read_toml(file) if file is not None else {}
        for var, key in _ENV_FIELDS.items():
            if var in env:
                *parents, leaf = key.split(".")
                target = data
                for parent in parents:
                    target = target.setdefault(parent, {})
                target[leaf] = env[var]
        source = str(file) if file is not None else "defaults"
        models = data.get("models")
        if isinstance(models, dict):
            # A file that configures models adds to the built-in local model; it can override it.
            data["models"] = {**_default_models(), **models}
        try:
            settings = cls.model_validate({**data, "source": source})
        except ValidationError as exc:
            raise _config_error(exc, source) from None
        return settings.with_secrets(env)

    def with_secrets(self, environ: Mapping[str, str]) -> Settings:
        """Fill each model's api_key from the variable it names (keys stay SecretStr)."""
        models = {
            name: m.model_copy(update={"api_key": SecretStr(environ[m.api_key_env])})
            if m.api_key_env and m.api_key is None and environ.get(m.api_key_env)
            else m
            for name, m in self.models.items()
        }
        return self.model_copy(update={"models": models})

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'tether.db'}"

    def model(self, name: str | None) -> tuple[str, ModelSettings]:
        from tether.errors import ModelNotFound

        key = name or self.default_model
        try:
            return key, self.models[key]
        except KeyError:
            raise ModelNotFound(key, list(self.models)) from None


def _config_path(environ: Mapping[str, str]) -> Path | None:
    if CONFIG_ENV in environ:
        path = Path(environ[CONFIG_ENV])
        if not path.is_file():
            raise ConfigError(
                "file not found",
                file=str(path),
                field=None,
                fix=f"create it or unset {CONFIG_ENV}",
            )
        return path
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            "file not found", file=str(path), field=None, fix="check the path"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"not valid TOML: {exc}", file=str(path), field=None, fix="fix the syntax at that line"
        ) from None


def _config_error(exc: ValidationError, source: str) -> ConfigError:
    """One error that lists every problem, each with its field and what to do, so a file is
    fixed in one pass rather than one complaint at a time."""
    problems = exc.errors()
    lines = [
        f"{'.'.join(str(part) for part in p['loc']) or '(top level)'}: {p['msg']} "
        f"({'remove the field' if p['type'] == 'extra_forbidden' else 'set a valid value'})"
        for p in problems
    ]
    first = problems[0]
    field = ".".join(str(part) for part in first["loc"])
    if len(lines) == 1:
        fix = "remove the field" if first["type"] == "extra_forbidden" else "set a valid value"
        return ConfigError(first["msg"], file=source, field=field, fix=fix)
    listed = "\n  ".join(lines)
    return ConfigError(
        f"{len(lines)} problems:\n  {listed}",
        file=source,
        field=None,
        fix="correct each field listed above",
    )
