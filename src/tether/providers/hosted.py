"""What the providers built on an official SDK (OpenAI, Anthropic) share: the key, lazily
created sync and async clients, and the mapping of SDK errors onto tether's tree."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from types import ModuleType
from typing import Any, ClassVar, Generic, Self, TypeVar

import httpx2

from tether.errors import MissingApiKey, SchemaProblem, no_embeddings
from tether.messages import Completion, ProviderCall, StreamChunk, Usage
from tether.providers.base import Capabilities
from tether.providers.schema_profiles import default_engine
from tether.providers.sdk_errors import translate
from tether.settings import ModelSettings, Settings

SyncClient = TypeVar("SyncClient")
AsyncClient = TypeVar("AsyncClient")


class HostedProvider(ABC, Generic[SyncClient, AsyncClient]):
    kind: ClassVar[str]
    default_base_url: ClassVar[str]
    default_capabilities: ClassVar[Capabilities]
    sdk: ClassVar[ModuleType]

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 0,
        capabilities: Capabilities | None = None,
        http_client: httpx2.Client | None = None,
        async_http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        """`http_client`/`async_http_client` replace the SDK's transport (proxies, replaying
        recorded HTTP in tests). `max_retries` is the SDK's own; the request pipeline does the
        retrying (backoff, Retry-After, the deadline, the circuit breaker, every retry billed as
        an attempt), so it stays 0 there."""
        self.model = model
        self.base_url = base_url or self.default_base_url
        self.capabilities = self._with_engine(capabilities or self.default_capabilities)
        self._api_key = api_key
        self._api_key_env = api_key_env
        self._client_options: dict[str, Any] = {
            "base_url": self.base_url,
            "timeout": timeout_s,
            "max_retries": max_retries,
        }
        self._http = http_client
        self._ahttp = async_http_client
        self._sync: SyncClient | None = None
        self._async: AsyncClient | None = None

    @classmethod
    def from_settings(cls, name: str, model: ModelSettings, settings: Settings) -> Self:
        return cls(
            model.upstream_model or name,
            base_url=model.base_url,
            api_key=model.api_key.get_secret_value() if model.api_key else None,
            api_key_env=model.api_key_env,
            timeout_s=model.timeout_s,
            capabilities=cls.default_capabilities.overridden(model.capabilities),
        )

    def _with_engine(self, capabilities: Capabilities) -> Capabilities:
        """Name the schema profile the server follows: the one configured, else the
        provider's own, else the one its URL implies (providers/schema_profiles)."""
        if capabilities.engine is not None:
            return capabilities
        engine = self.default_capabilities.engine or default_engine(self.base_url)
        return replace(capabilities, engine=engine)

    def schema_problems(self, schema: Mapping[str, Any]) -> list[SchemaProblem]:
        return []  # what the server refuses is the schema profile's to say (pre-flight)

    def count_tokens(self, text: str) -> int | None:
        return None  # hosted tokenizers are not available offline

    def complete(self, call: ProviderCall) -> Completion:
        if self._sync is None:
            self._sync = self._new_sync(api_key=self._key(), http_client=self._http)
        try:
            response = self._send(self._sync, self._arguments(call))
        except self.sdk.APIError as exc:
            raise self._translate(exc) from None
        return self._completion(response, call)

    async def acomplete(self, call: ProviderCall) -> Completion:
        if self._only_sync_transport:
            # The caller gave only a sync transport (a proxy, a recording): serve async calls
            # through it, in a worker thread.
            return await asyncio.to_thread(self.complete, call)
        if self._async is None:
            self._async = self._new_async(api_key=self._key(), http_client=self._ahttp)
        try:
            response = await self._asend(self._async, self._arguments(call))
        except self.sdk.APIError as exc:
            raise self._translate(exc) from None
        return self._completion(response, call)

    @property
    def _only_sync_transport(self) -> bool:
        return self._http is not None and self._ahttp is None

    async def astream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        """Whole-completion fallback; providers with native streaming override it."""
        completion = await self.acomplete(call)
        yield StreamChunk(completion.text)
        yield StreamChunk("", usage=completion.usage, finish_reason=completion.finish_reason)

    async def aembed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        raise no_embeddings(self.kind, self.model)

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()  # type: ignore[attr-defined]  # both SDK clients have close()

    # -- what each SDK does differently ---------------------------------------------------------

    @abstractmethod
    def _new_sync(self, *, api_key: str, http_client: httpx2.Client | None) -> SyncClient: ...

    @abstractmethod
    def _new_async(
        self, *, api_key: str, http_client: httpx2.AsyncClient | None
    ) -> AsyncClient: ...

    @abstractmethod
    def _send(self, client: SyncClient, arguments: dict[str, Any]) -> Any: ...

    @abstractmethod
    async def _asend(self, client: AsyncClient, arguments: dict[str, Any]) -> Any: ...

    @abstractmethod
    def _arguments(self, call: ProviderCall) -> dict[str, Any]: ...

    @abstractmethod
    def _completion(self, response: Any, call: ProviderCall) -> Completion: ...

    # -- shared internals ---------------------------------------------------------------------

    def _key(self) -> str:
        if self._api_key:
            return self._api_key
        if self._api_key_env:
            raise MissingApiKey(provider=self.kind, model=self.model, env_var=self._api_key_env)
        return "unused"  # self-hosted servers without auth still need a non-empty value

    def _translate(self, exc: Exception) -> Exception:
        found = translate(
            exc,
            self.sdk,
            provider=self.kind,
            model=self.model,
            url=self.base_url,
            key_env=self._api_key_env,
            secret=self._api_key,
        )
        return found or exc
