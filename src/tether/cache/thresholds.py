"""The threshold each prompt's semantic hits must reach, for the false-hit rate it asked for.

A prompt with enough graded samples of its own is calibrated on them (see
semantic/calibration.py); one without is calibrated on the bundled grades (STS-B pairs scored
with the bundled embedder), which only hold for that embedder: with another, nothing is
served semantically until the prompt has grades of its own. Calibrations are kept a minute,
so new grades count without a database read per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tether.cache.grades import GradeStore
from tether.cache.semantic.calibration import Calibration, calibrate

REFRESH_S = 60.0
RECENT_GRADES = 5000
BUNDLED_SOURCE = "bundled"


class Thresholds:
    def __init__(
        self,
        bundled: dict[str, Any],
        bundled_embedder: str,
        grades: Callable[[], GradeStore | None],
        *,
        min_grades: int,
    ) -> None:
        self._bundled_scores = [float(s) for s in bundled["scores"]]
        self._bundled_same = [bool(v) for v in bundled["same"]]
        self._bundled_embedder = bundled_embedder
        self._grades = grades
        self._min_grades = min_grades
        self._found: dict[tuple[str | None, float, str], tuple[float, Calibration]] = {}
        self._bundled: dict[float, Calibration] = {}

    async def get(self, prompt: str | None, delta: float, embedder: str) -> Calibration:
        key = (prompt, delta, embedder)
        found = self._found.get(key)
        now = time.monotonic()
        if found is not None and now - found[0] < REFRESH_S:
            return found[1]
        calibration = await asyncio.to_thread(self._calibrate, prompt, delta, embedder)
        self._found[key] = (now, calibration)
        return calibration

    def forget(self) -> None:
        """Read the grades again on the next request (after `tether cache calibrate`)."""
        self._found.clear()

    def _calibrate(self, prompt: str | None, delta: float, embedder: str) -> Calibration:
        store = self._grades()
        if store is not None:
            own = store.recent(prompt, RECENT_GRADES)
            if len(own) >= self._min_grades:
                return calibrate([g.score for g in own], [g.right for g in own], delta,
                                 prompt or "calls without a prompt")  # fmt: skip
        if embedder != self._bundled_embedder:
            return Calibration(None, delta, 0, 0, 1.0, "uncalibrated")
        cached = self._bundled.get(delta)
        if cached is None:
            cached = calibrate(self._bundled_scores, self._bundled_same, delta, BUNDLED_SOURCE)
            self._bundled[delta] = cached
        return cached
