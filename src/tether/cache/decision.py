"""What the cache did for one request, as the request log and the detail page show it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# miss: looked up, nothing servable (and then stored, see `stored`); exact / semantic: served;
# bypass: the caller asked not to read the cache; skip: the request cannot be cached.
CacheKind = Literal["miss", "exact", "semantic", "bypass", "skip"]


@dataclass
class CacheDecision:
    kind: CacheKind
    reason: str | None = None  # why a lookup was skipped or a neighbour not served
    similarity: float | None = None  # cosine of the best neighbour looked at
    score: float | None = None  # its match probability (the scorer's)
    threshold: float | None = None  # the calibrated threshold the score had to reach
    vetoed_by: str | None = None  # the guard that vetoed a neighbour
    entry: str | None = None  # the exact key of the entry served
    stored: bool = False  # this answer was filed for later requests
    verified: bool = False  # a semantic hit re-checked by calling the model (calibration)
    saved_usd: float = 0.0  # on a hit: what the original call cost
    saved_s: float = 0.0  # on a hit: how much sooner the answer came than the original's

    @property
    def hit(self) -> bool:
        return self.kind in ("exact", "semantic") and not self.verified

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False, 0.0)}
