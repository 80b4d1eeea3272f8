"""Provider kinds by name. A new provider is one new module plus one line here.

Entries are import paths, resolved on first use, so that choosing the OpenAI provider never
imports llama.cpp and vice versa.
"""

from __future__ import annotations

from importlib import import_module
from typing import Protocol, cast

from tether.providers.base import Provider
from tether.settings import ModelSettings, Settings

PROVIDER_KINDS: dict[str, str] = {
    "anthropic": "tether.providers.anthropic:AnthropicProvider",
    "fake": "tether.providers.testing:FakeProvider",
    "llamacpp": "tether.providers.llamacpp:LlamaCppProvider",
    "local_embed": "tether.providers.local_embed:LocalEmbedProvider",
    "openai": "tether.providers.openai_compat:OpenAICompatProvider",
}


class ProviderFactory(Protocol):
    def from_settings(self, name: str, model: ModelSettings, settings: Settings) -> Provider: ...


def create_provider(name: str, model: ModelSettings, settings: Settings) -> Provider:
    module_name, _, attr = PROVIDER_KINDS[model.provider].partition(":")
    factory = cast(ProviderFactory, getattr(import_module(module_name), attr))
    return factory.from_settings(name, model, settings)
