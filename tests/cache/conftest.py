"""The real MiniLM embedder, loaded once per session (about 23 MB of int8 ONNX)."""

from __future__ import annotations

import pytest

from tether.cache.embedders import MiniLMEmbedder


@pytest.fixture(scope="session")
def minilm() -> MiniLMEmbedder:
    embedder = MiniLMEmbedder()
    embedder.load()
    return embedder
