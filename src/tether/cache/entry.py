"""A cached answer and what it is filed under.

An entry keeps the raw text of every choice (never the converted output: a hit is validated
again against the contract the request has now), the pieces a streamed answer went out in (a
replay streams them the same way), and what the original call cost and took (what a hit
saves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from tether.cache.embedders.base import Vectors


@dataclass(frozen=True)
class Answer:
    choices: tuple[str, ...]  # each choice's raw text
    pieces: tuple[str, ...] | None  # how a streamed answer went out, in order
    model: str  # the configured model that answered
    upstream: str  # the model name the provider reported
    provider: str

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "choices": self.choices,
                "pieces": self.pieces,
                "model": self.model,
                "upstream": self.upstream,
                "provider": self.provider,
            }
        )

    @classmethod
    def loads(cls, raw: bytes) -> Answer:
        data: dict[str, Any] = orjson.loads(raw)
        pieces = data.get("pieces")
        return cls(
            choices=tuple(data["choices"]),
            pieces=tuple(pieces) if pieces is not None else None,
            model=data["model"],
            upstream=data["upstream"],
            provider=data["provider"],
        )


@dataclass(frozen=True)
class Entry:
    key: str  # the exact key
    namespace: str  # what it may be compared within (semantic lookups)
    scope: str  # the tenant it belongs to
    prompt: str | None
    version: str | None
    model: str  # the model the request asked for
    text: str | None  # what a semantic lookup compares; None: found by exact key only
    answer: Answer
    created_at: float  # unix seconds
    expires_at: float
    cost_usd: float  # what the original call cost
    latency_s: float  # and how long it took
    tags: tuple[str, ...] = ()
    vector: Vectors | None = field(default=None, compare=False)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def vector_bytes(self) -> bytes | None:
        return None if self.vector is None else self.vector.astype("<f4").tobytes()

    @staticmethod
    def vector_from(raw: bytes | None) -> Vectors | None:
        if raw is None:
            return None
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)
