"""The bundled sentence embedder as a model: all-MiniLM-L6-v2 (int8 ONNX, 384 dimensions).

Serves `/v1/embeddings` and `Client` embeddings from the same embedder the semantic cache uses
(`tether.cache.embedders.minilm`), with no network and no GPU. It makes vectors only: a text
completion asked of it is refused with a ProviderError naming the chat models to use instead.
The ONNX run is CPU-bound, so the async API runs it in a worker thread, never on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

from tether.cache.embedders.minilm import MAX_TOKENS, MiniLMEmbedder
from tether.errors import ProviderError, SchemaProblem
from tether.messages import Completion, ProviderCall, StreamChunk, Usage
from tether.providers.base import Capabilities
from tether.settings import ModelSettings, Settings

CAPABILITIES = Capabilities(
    supports_embeddings=True, supports_chat=False, context_window=MAX_TOKENS
)


class LocalEmbedProvider:
    kind = "local_embed"

    def __init__(self, embedder: MiniLMEmbedder, *, model: str) -> None:
        self.model = model
        self.capabilities = CAPABILITIES
        self._embedder = embedder

    @classmethod
    def from_settings(
        cls, name: str, model: ModelSettings, settings: Settings
    ) -> LocalEmbedProvider:
        return cls(MiniLMEmbedder(threads=model.threads or 1), model=model.upstream_model or name)

    @property
    def dimensions(self) -> int:
        return self._embedder.dimensions

    def schema_problems(self, schema: Mapping[str, Any]) -> list[SchemaProblem]:
        return [SchemaProblem("schema", "", "an embedding model generates no text")]

    def count_tokens(self, text: str) -> int | None:
        return self._embedder.count_tokens([text])

    def embed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        vectors = self._embedder.embed(texts)
        return vectors.tolist(), Usage(self._embedder.count_tokens(texts), 0)

    async def aembed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        return await asyncio.to_thread(self.embed, texts)

    def complete(self, call: ProviderCall) -> Completion:
        self._refuse()

    async def acomplete(self, call: ProviderCall) -> Completion:
        self._refuse()

    async def astream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        self._refuse()
        yield StreamChunk("")  # never reached: makes this an async generator

    def close(self) -> None:
        pass

    def _refuse(self) -> NoReturn:
        raise ProviderError(
            "this model makes embeddings only, not text",
            provider=self.kind,
            model=self.model,
            fix="ask a chat model (`local`, `local-small`) for text; use this one for embeddings",
        )
