"""Sentence embedders for semantic lookup and similarity assertions.

Importing this package loads no model and imports neither onnxruntime nor tokenizers.
"""

from tether.cache.embedders.base import Embedder, Vectors, cosine
from tether.cache.embedders.minilm import MiniLMEmbedder
from tether.cache.embedders.registry import EMBEDDER_KINDS, create_embedder
from tether.cache.embedders.testing import FakeEmbedder

__all__ = [
    "EMBEDDER_KINDS",
    "Embedder",
    "FakeEmbedder",
    "MiniLMEmbedder",
    "Vectors",
    "cosine",
    "create_embedder",
]
