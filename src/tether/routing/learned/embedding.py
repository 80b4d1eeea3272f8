"""How the learned router turns a request's text into its vector: the `embedding` setting.

- "minilm": the sentence model named by the router's `embedder` (all-MiniLM-L6-v2 by default),
  the whole transformer; the most accurate, and milliseconds per request on one core;
- "minilm-static": the mean of MiniLM's input token embeddings, no transformer
  (`tether.cache.embedders.minilm_static`); tens of microseconds;
- "none": no vector; the router reads its text features alone.

`max_tokens` cuts the text after that many MiniLM tokens before it is embedded (a transformer's
cost grows with the length). Both are stored in the router file: a router trained one way is
refused when loaded another way, since its vectors would mean something else.

On RouteLLM's GSM8K and MMLU outcomes (benchmarks/results/routing.md) "minilm-static" keeps
the cross-fitted APGR within 0.02 of "minilm" (0.661 / 0.681 against 0.672 / 0.688) and decides
in about 1 ms of one core against 15-20 ms; cutting MiniLM's input to 32 tokens still leaves
it near 10 ms. A router trained by `train_router` embeds with "minilm" unless its
`TrainOptions` say otherwise; DEFAULT_EMBEDDING is the recommended choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from tether.cache.embedders.base import Embedder, Vectors, check_texts

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Embedding = Literal["minilm", "minilm-static", "none"]
EMBEDDINGS: tuple[str, ...] = get_args(Embedding)
DEFAULT_EMBEDDING: Embedding = "minilm-static"


class NoEmbedding:
    """Zero-width vectors: the router's regression reads the text features alone and its kNN
    falls back to the training pass rates."""

    @property
    def name(self) -> str:
        return "none"

    @property
    def dimensions(self) -> int:
        return 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        return np.zeros((len(check_texts(texts)), 0), dtype=np.float32)


class TokenCut:
    """Another embedder reading only the first `max_tokens` MiniLM tokens of each text
    (special tokens included, as the model counts them): the text is cut where that token
    ends. Its name says the cut, so vectors of cut and whole texts are never compared."""

    def __init__(self, inner: Embedder, max_tokens: int) -> None:
        if max_tokens < 3:
            raise ValueError(f"max_tokens must be at least 3, got {max_tokens}")
        self.inner = inner
        self.max_tokens = max_tokens
        self._tokenizer: Tokenizer | None = None

    @property
    def name(self) -> str:
        return f"{self.inner.name}-max{self.max_tokens}"

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    def cut(self, texts: Sequence[str]) -> list[str]:
        items = check_texts(texts)
        if self._tokenizer is None:
            from tether.cache.embedders.minilm_static import StaticMiniLMEmbedder

            self._tokenizer = StaticMiniLMEmbedder(max_tokens=self.max_tokens).tokenizer()
        out = []
        for text, encoding in zip(items, self._tokenizer.encode_batch(items), strict=True):
            ends = [end for (_, end), special in zip(
                encoding.offsets, encoding.special_tokens_mask, strict=True
            ) if not special]  # fmt: skip
            cut = len(encoding.ids) >= self.max_tokens and ends
            out.append(text[: ends[-1]] if cut else text)
        return out

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed(self.cut(texts))


@cache
def _static(max_tokens: int | None) -> Embedder:
    """One static embedder per cut, shared by every router in the process (its table is
    45 MiB)."""
    from tether.cache.embedders.minilm_static import DEFAULT_MAX_TOKENS, StaticMiniLMEmbedder

    return StaticMiniLMEmbedder(max_tokens=max_tokens or DEFAULT_MAX_TOKENS)


def router_embedder(
    embedding: str, max_tokens: int | None, model: Embedder | None = None
) -> Embedder:
    """The embedder for a router trained with `embedding` and `max_tokens`; `model` is the
    sentence model "minilm" runs (the registry's MiniLM when None)."""
    if embedding == "none":
        return NoEmbedding()
    if embedding == "minilm-static":
        return _static(max_tokens)
    if embedding == "minilm":
        if model is None:
            from tether.cache.embedders.registry import create_embedder

            model = create_embedder("minilm")
        return model if max_tokens is None else TokenCut(model, max_tokens)
    raise ValueError(f"unknown embedding {embedding!r} (known: {', '.join(EMBEDDINGS)})")
