"""The cache backend interface: where entries live, how they are found and dropped.

Two backends: `local` (in process, persisted to a SQLite file; one replica) and `redis`
(shared by replicas). Both keep the semantic index in process (usearch): a replica's index is
rebuilt from the backend at start and follows what other replicas add and drop.

`search` returns neighbours by cosine similarity within one namespace; the caller decides
whether any may be served (scorer, threshold, guards, contract). Nothing returned is expired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tether.cache.embedders.base import Vectors
from tether.cache.entry import Entry


@dataclass(frozen=True)
class Selector:
    """Which entries to drop: every field given must match (none given: all entries)."""

    prompt: str | None = None
    version: str | None = None
    tag: str | None = None
    scope: str | None = None
    model: str | None = None
    older_than_s: float | None = None  # created more than this many seconds ago

    def matches(self, entry: Entry, now: float) -> bool:
        return (
            (self.prompt is None or entry.prompt == self.prompt)
            and (self.version is None or entry.version == self.version)
            and (self.tag is None or self.tag in entry.tags)
            and (self.scope is None or entry.scope == self.scope)
            and (self.model is None or entry.model == self.model)
            and (self.older_than_s is None or now - entry.created_at > self.older_than_s)
        )

    def describe(self) -> str:
        parts = [f"{name}={value}" for name, value in self.__dict__.items() if value is not None]
        return ", ".join(parts) or "everything"


@dataclass(frozen=True)
class BackendStats:
    entries: int
    by_prompt: dict[str, int] = field(default_factory=dict)  # "" for calls without a prompt
    bytes: int = 0  # the answers' size


class CacheBackend(Protocol):
    name: str

    async def get(self, key: str, now: float) -> Entry | None:
        """The live entry filed under this exact key."""
        ...

    async def put(self, entry: Entry) -> None:
        """File (or replace) an entry; the oldest-used go once the size limit is reached."""
        ...

    async def search(
        self, namespace: str, vector: Vectors, k: int, now: float
    ) -> list[tuple[Entry, float]]:
        """Up to `k` live entries of `namespace` nearest `vector`, most similar first, with
        their cosine similarity. CPU work: call it off the event loop."""
        ...

    async def invalidate(self, selector: Selector, now: float) -> int:
        """Drop the matching entries (on every replica); how many there were."""
        ...

    async def stats(self, now: float) -> BackendStats: ...

    async def close(self) -> None: ...
