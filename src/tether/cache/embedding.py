"""The semantic cache's embedder: the bundled MiniLM (in a thread), or any configured model
that embeds (an OpenAI-compatible embeddings endpoint, through the provider pool).

`vector` gives None for a text that cannot be compared at all: MiniLM reads 256 tokens and
cuts the rest, and two long texts that differ after the cut would look identical. Such texts
are matched exactly, never by meaning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tether.cache.embedders.base import Vectors, normalise
from tether.cache.embedders.minilm import MiniLMEmbedder
from tether.errors import ConfigError
from tether.providers.pool import ProviderPool
from tether.settings import Settings

BUNDLED = "minilm"


class CacheEmbedder:
    def __init__(self, choice: str, pool: ProviderPool, settings: Settings) -> None:
        self._choice = choice
        self._pool = pool
        self._local = MiniLMEmbedder() if choice == BUNDLED else None
        if self._local is None:
            configured = settings.models.get(choice)
            if configured is None:
                raise ConfigError(
                    f"the semantic cache's embedder {choice!r} is not a configured model",
                    file=settings.source,
                    field="cache.semantic.embedder",
                    fix=f'use "{BUNDLED}" or the name of a model under [models] that embeds',
                )

    @property
    def name(self) -> str:
        """What vectors are comparable with (part of every namespace)."""
        return self._local.name if self._local is not None else f"model:{self._choice}"

    async def vector(self, text: str) -> Vectors | None:
        """The text's vector (one row), or None when it is too long to compare."""
        local = self._local
        if local is None:
            return _row(await self.embed([text]))  # hosted embedders read thousands of tokens
        return await asyncio.to_thread(local.embed_uncut, text)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if self._local is not None:
            return await asyncio.to_thread(self._local.embed, list(texts))
        _, provider, _ = self._pool.resolve(self._choice)
        vectors, _ = await provider.aembed(list(texts))
        return normalise(vectors)  # type: ignore[arg-type]


def _row(vectors: Vectors) -> Vectors:
    row: Vectors = vectors[0]
    return row
