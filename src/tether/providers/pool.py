"""One provider instance per configured model name, created on first use and reused."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from tether.errors import ModelNotFound
from tether.providers.base import Provider
from tether.providers.registry import create_provider
from tether.settings import PriceSettings, Settings


class ProviderPool:
    def __init__(self, settings: Settings, preset: Mapping[str, Provider] | None = None) -> None:
        self._settings = settings
        self._providers: dict[str, Provider] = dict(preset or {})
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted({*self._settings.models, *self._providers})

    def resolve(self, name: str | None) -> tuple[str, Provider, PriceSettings]:
        key = name or self._settings.default_model
        configured = self._settings.models.get(key)
        price = configured.price if configured else PriceSettings()
        with self._lock:
            provider = self._providers.get(key)
            if provider is None:
                if configured is None:
                    raise ModelNotFound(key, self.names())
                provider = create_provider(key, configured, self._settings)
                self._providers[key] = provider
        return key, provider, price

    def close(self) -> None:
        with self._lock:
            for provider in self._providers.values():
                provider.close()
            self._providers.clear()
