"""What building a policy may need beyond its own settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tether.cache.embedders.base import Embedder


@dataclass(frozen=True)
class BuildContext:
    name: str  # the router's name in the settings, for error fields
    allowed_modules: Sequence[str] = ()  # where a rule's user function may be imported from
    # An embedder to reuse (the learned policy's must match its router file); None: made from
    # the router's settings.
    embedder: Embedder | None = field(default=None)

    def field(self, *parts: str | int) -> str:
        return ".".join(["routers", self.name, *(str(p) for p in parts)])
