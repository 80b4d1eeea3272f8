"""The provider interface: one object per configured model that turns a call into a completion.

Capabilities are data: code asks `provider.capabilities.supports_grammar`, never the name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from tether.errors import SchemaProblem
from tether.messages import Completion, ProviderCall, StreamChunk, Usage
from tether.settings import CapabilityOverrides


@dataclass(frozen=True)
class SchemaSupport:
    """Which JSON Schema keywords a provider enforces while generating.

    Keywords not in `enforced` are still checked by tether's validator after generation;
    keywords in `unsupported` make the provider refuse the schema, with the reason given.
    """

    enforced: frozenset[str] = frozenset()
    unsupported: Mapping[str, str] = field(default_factory=dict)
    root_must_be_object: bool = False


# Optional request fields a provider may honour beyond max_tokens and temperature.
SAMPLING_PARAMS = frozenset(
    {
        "seed", "stop", "top_p", "presence_penalty", "frequency_penalty", "logit_bias",
        "logprobs", "top_logprobs",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Capabilities:
    supports_json_schema: bool = False
    supports_grammar: bool = False
    supports_tools: bool = False
    can_stream: bool = False
    # The server enforces a schema sent as {"type": "json_object", "schema": ...}
    # (llama-cpp-python's server) rather than OpenAI's json_schema response format.
    schema_in_json_object: bool = False
    supports_embeddings: bool = False
    supports_chat: bool = True  # False for a model that only embeds
    # Which request field carries the output budget (OpenAI-compatible servers); None: the
    # provider's default for its server.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = None
    context_window: int | None = None
    schema: SchemaSupport = SchemaSupport()
    # Which of SAMPLING_PARAMS the provider honours: a request that sets another one is
    # refused with the field named, never silently dropped.
    sampling_params: frozenset[str] = frozenset({"seed", "stop"})
    # The provider returns `n` choices from one call (the prompt is billed once); others run
    # one call per choice.
    supports_n: bool = False
    # The provider ends a call itself once the model's `timeout_s` has passed (an HTTP client
    # timeout): the pipeline then guards an attempt with the request's deadline only when the
    # deadline is nearer than what the attempt's own timeouts allow.
    honours_timeout: bool = False
    # Which schema profile the server follows (providers/schema_profiles): openai, anthropic,
    # vllm, llama-server, ollama or generic. None: the provider's own rules (SchemaSupport, or
    # its grammar compiler).
    engine: str | None = None

    def overridden(self, overrides: CapabilityOverrides) -> Capabilities:
        changes = {k: v for k, v in overrides.model_dump().items() if v is not None}
        return replace(self, **changes)

    @property
    def enforcement(self) -> str:
        if self.supports_grammar:
            return "grammar-constrained decoding"
        if self.supports_json_schema:
            return "strict JSON schema mode"
        if self.supports_tools:
            return "tool use"
        return "validation after generation"


@runtime_checkable
class Provider(Protocol):
    """A model behind one interface. Implementations live one per file in this package."""

    @property
    def kind(self) -> str:
        """The provider kind as named in settings (openai, anthropic, llamacpp, fake)."""
        ...

    @property
    def model(self) -> str:
        """The model id the provider knows."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def schema_problems(self, schema: Mapping[str, Any]) -> list[SchemaProblem]:
        """Problems found by compiling `schema` the way this provider would enforce it."""
        ...

    def count_tokens(self, text: str) -> int | None:
        """Tokens of `text` in this model's tokenizer, or None when it has none at hand."""
        ...

    def complete(self, call: ProviderCall) -> Completion: ...

    async def acomplete(self, call: ProviderCall) -> Completion: ...

    def astream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        """Text as it is generated (free text only: structured output is validated whole)."""
        ...

    async def aembed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        """Embeddings, where `capabilities.supports_embeddings`."""
        ...

    def close(self) -> None: ...
