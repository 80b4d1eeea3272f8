"""An embedder for tests: no model, deterministic, instant. Public API."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from tether.cache.embedders.base import Vectors, check_texts, normalise

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Hashes lower-cased words into signed buckets: texts that share words get close vectors.

    Stable across processes and platforms (blake2b, not `hash`). Records every call in `calls`.
    A text without words is embedded as the empty word, so every row has unit length.
    """

    def __init__(self, dimensions: int = 64) -> None:
        if dimensions < 1:
            raise ValueError(f"dimensions must be at least 1, got {dimensions}")
        self._dimensions = dimensions
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return f"fake-{self._dimensions}"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = check_texts(texts)
        self.calls.append(items)
        out = np.zeros((len(items), self._dimensions), dtype=np.float32)
        for row, text in enumerate(items):
            for word in _WORD.findall(text.lower()) or [""]:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest, "little")
                out[row, bucket % self._dimensions] += 1.0 if bucket >> 63 else -1.0
        return normalise(out)
