"""One provider instance per configured model name, created on first use and reused."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from tether.costs.catalog import PricedModel, price_for
from tether.errors import ModelNotFound
from tether.providers.base import Provider
from tether.providers.registry import create_provider
from tether.settings import PriceSettings, Settings


class ProviderPool:
    def __init__(self, settings: Settings, preset: Mapping[str, Provider] | None = None) -> None:
        self._settings = settings
        self._providers: dict[str, Provider] = dict(preset or {})
        # name -> (provider, price): resolved on every call, so found once
        self._resolved: dict[str, tuple[Provider, PriceSettings]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted({*self._settings.models, *self._providers})

    def resolve(self, name: str | None) -> tuple[str, Provider, PriceSettings]:
        key = name or self._settings.default_model
        found = self._resolved.get(key)
        if found is not None:
            return key, found[0], found[1]
        configured = self._settings.models.get(key)
        price = price_for(key, configured).price
        with self._lock:
            provider = self._providers.get(key)
            if provider is None:
                if configured is None:
                    raise ModelNotFound(key, self.names())
                provider = create_provider(key, configured, self._settings)
                self._providers[key] = provider
            self._resolved[key] = (provider, price)
        return key, provider, price

    def priced(self, name: str | None) -> PricedModel:
        """The price `name` is charged at and where it comes from (settings, catalog, none)."""
        key = name or self._settings.default_model
        return price_for(key, self._settings.models.get(key))

    def close(self) -> None:
        with self._lock:
            for provider in self._providers.values():
                provider.close()
            self._providers.clear()
            self._resolved.clear()
