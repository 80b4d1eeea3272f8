"""Thresholds from graded samples: the lowest score at which served answers stay under δ wrong.

A graded sample is a (score, right) pair: a neighbour's score and whether its answer was right
for the new request (a verifier call's answer compared, a miss whose neighbour's answer matched
the fresh one, feedback, a graded pair). For a threshold t, the hits are the samples scoring
at least t; their false-hit rate is bounded above with a one-sided Wilson interval (99%), so a
handful of lucky samples never certify a low threshold (and choosing the lowest of many
thresholds, each tested on the same samples, does not wear the guarantee thin). The threshold
is the lowest t whose bound is at most δ; when none is, nothing may be served semantically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_99 = 2.3263478740408408  # one-sided 99%


def upper_bound(wrong: int, total: int, z: float = Z_99) -> float:
    """Wilson score upper bound of a proportion (1.0 when nothing was seen)."""
    if total == 0:
        return 1.0
    p = wrong / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return min(1.0, (centre + spread) / denominator)


@dataclass(frozen=True)
class Calibration:
    threshold: float | None  # None: no threshold keeps the bound under δ
    delta: float
    samples: int  # graded samples it was set from
    hits: int  # of them, those at or above the threshold
    bound: float  # the false-hit rate's upper bound there
    source: str  # "bundled" or the prompt it was graded on


def calibrate(
    scores: Sequence[float], right: Sequence[bool], delta: float, source: str
) -> Calibration:
    ranked = sorted(zip(scores, right, strict=True), key=lambda pair: -pair[0])
    best: tuple[float, int, float] | None = None
    wrong = 0
    for index, (score, ok) in enumerate(ranked):
        wrong += not ok
        if index + 1 < len(ranked) and ranked[index + 1][0] == score:
            continue  # a threshold admits every sample of equal score
        bound = upper_bound(wrong, index + 1)
        if bound <= delta:
            best = (score, index + 1, bound)
    if best is None:
        return Calibration(None, delta, len(ranked), 0, 1.0, source)
    threshold, hits, bound = best
    return Calibration(threshold, delta, len(ranked), hits, bound, source)
