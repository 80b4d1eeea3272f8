"""The embedder interface: texts in, L2-normalised float32 vectors out.

An embedder's `name` identifies its model and weights: vectors are comparable only between
embedders with equal names, so the semantic cache scopes its keys by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

Vectors = NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    @property
    def name(self) -> str:
        """The model and weights, e.g. "all-MiniLM-L6-v2-onnx-int8"."""
        ...

    @property
    def dimensions(self) -> int:
        """The length of every vector `embed` returns."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One L2-normalised row per text: a float32 array of shape (len(texts), dimensions)."""
        ...


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list; a bare string is refused (it would be embedded letter by letter)."""
    if isinstance(texts, str):
        raise TypeError("embed() takes a sequence of texts, not one str: wrap it in a list")
    items = list(texts)
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is {type(text).__name__}, not str")
    return items


def normalise(vectors: NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero), as contiguous float32."""
    rows = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


def cosine(a: ArrayLike, b: ArrayLike) -> float:
    """Cosine similarity of two 1-D vectors, in [-1, 1]; 0.0 when either is all zeros."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"cosine() needs two 1-D vectors of one length, got {x.shape}, {y.shape}")
    denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
    if denominator == 0.0:
        return 0.0
    return max(-1.0, min(1.0, float(x @ y) / denominator))
