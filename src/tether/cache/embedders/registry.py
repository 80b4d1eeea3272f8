"""Embedder kinds by name. A new embedder is one new module plus one line here.

Entries are import paths, resolved on first use, so that naming the fake embedder never imports
the ONNX one's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import cast

from tether.cache.embedders.base import Embedder
from tether.errors import ConfigError

EMBEDDER_KINDS: dict[str, str] = {
    "fake": "tether.cache.embedders.testing:FakeEmbedder",
    "minilm": "tether.cache.embedders.minilm:MiniLMEmbedder",
}


def create_embedder(kind: str) -> Embedder:
    """A new embedder of this kind with its default options; its model loads on first use."""
    try:
        target = EMBEDDER_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(EMBEDDER_KINDS))
        raise ConfigError(
            f"unknown embedder {kind!r} (known: {known})",
            file=None,
            field="embedder",
            fix=f"use one of: {known}",
        ) from None
    module_name, _, attr = target.partition(":")
    factory = cast(Callable[[], Embedder], getattr(import_module(module_name), attr))
    return factory()
