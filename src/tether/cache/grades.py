"""Graded samples: whether a neighbour's answer was right for a new request, with its score.

Calibration reads them to set a prompt's own threshold (see semantic/calibration.py). They come
from the cache itself (a miss whose best neighbour's answer matched, or not, the fresh answer;
a semantic hit re-checked by calling the model), from feedback on served hits, and from graded
pairs given to `tether cache calibrate`. They live in the database beside the request log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

GradeSource = Literal["miss", "verify", "feedback", "pairs"]


@dataclass(frozen=True)
class Grade:
    prompt: str | None  # None: calls without a registered prompt
    score: float  # the scorer's match probability for the neighbour
    similarity: float  # the embeddings' cosine
    right: bool  # the neighbour's answer was right for the request
    source: GradeSource
    request_id: str | None
    created_at: float  # unix seconds


class GradeStore(Protocol):
    """Blocking calls (database work): the cache runs them in a thread."""

    def add(self, grades: Sequence[Grade]) -> None: ...

    def recent(self, prompt: str | None, limit: int) -> list[Grade]:
        """The prompt's latest grades, newest first."""
        ...
