"""Cost against quality for a router's scores, the way RouteLLM evaluates routers.

Each request has a score (higher: more reason to send it to premium) and whether the cheap and
the premium model answered it correctly. Thresholds at the 0, 10, …, 100th percentiles of the
scores (RouteLLM's `num_results=10`) each send the requests scoring at or above them to premium
(above, at the last one, so the curve runs from 100% to 0% premium calls). Each threshold gives
one point: share of premium calls, accuracy.

APGR (average performance gap recovered) is the area under that curve between the cheap model's
accuracy and the premium model's, over the share axis (trapezoids, as RouteLLM's np.trapz):
0.5 is what a random router gets, 1.0 is the premium model's quality from the first call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    thresholds: Floats
    premium_share: Floats  # ascending
    accuracy: Floats
    cheap_accuracy: float
    premium_accuracy: float

    @property
    def gap(self) -> float:
        return self.premium_accuracy - self.cheap_accuracy

    def apgr(self) -> float:
        """RouteLLM's APGR: (AUC - cheap AUC) / (premium AUC - cheap AUC)."""
        x = self.premium_share
        width = float(x[-1] - x[0])
        if self.gap == 0 or width == 0:
            return float("nan")
        area = float(np.trapezoid(self.accuracy, x))
        return (area - self.cheap_accuracy * width) / (self.gap * width)

    def share_for_gap(self, fraction: float) -> float | None:
        """The smallest share of premium calls at which the curve (linearly interpolated)
        recovers `fraction` of the quality gap; None if it never does."""
        target = self.cheap_accuracy + fraction * self.gap
        x, y = self.premium_share, self.accuracy
        if y[0] >= target:
            return float(x[0])
        for i in range(1, len(x)):
            if y[i] >= target:
                if y[i] == y[i - 1]:
                    return float(x[i])
                return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
        return None

    def points(self) -> list[dict[str, float]]:
        return [
            {"threshold": float(t), "premium_share": float(s), "accuracy": float(a)}
            for t, s, a in zip(self.thresholds, self.premium_share, self.accuracy, strict=True)
        ]


def cost_quality_curve(
    scores: ArrayLike, cheap_correct: ArrayLike, premium_correct: ArrayLike, *, points: int = 10
) -> Curve:
    """The curve for `scores` (higher: send to premium); `points` percentile bins."""
    s = np.asarray(scores, dtype=np.float64)
    cheap = np.asarray(cheap_correct, dtype=bool)
    premium = np.asarray(premium_correct, dtype=bool)
    if not (s.shape == cheap.shape == premium.shape) or s.ndim != 1 or len(s) == 0:
        raise ValueError("scores and both correctness arrays need one equal, non-zero length")
    thresholds = np.quantile(s, np.linspace(0, 1, points + 1))
    shares, accuracy = [], []
    for i, threshold in enumerate(thresholds):
        chosen = s >= threshold if i < len(thresholds) - 1 else s > threshold
        shares.append(float(chosen.mean()))
        accuracy.append(float(np.where(chosen, premium, cheap).mean()))
    order = np.argsort(shares, kind="stable")
    return Curve(
        thresholds=thresholds[order],
        premium_share=np.asarray(shares)[order],
        accuracy=np.asarray(accuracy)[order],
        cheap_accuracy=float(cheap.mean()),
        premium_accuracy=float(premium.mean()),
    )


def routed_accuracy(
    send_premium: ArrayLike, cheap_correct: ArrayLike, premium_correct: ArrayLike
) -> float:
    chosen = np.asarray(send_premium, dtype=bool)
    routed = np.where(chosen, np.asarray(premium_correct, bool), np.asarray(cheap_correct, bool))
    return float(routed.mean())
