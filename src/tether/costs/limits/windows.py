"""The database store's sliding minute, approximated from two fixed minute buckets.

What counts at a moment `elapsed` seconds into minute m is everything in m plus the share of
minute m-1 that the sliding window still covers: `current + previous * (1 - elapsed / 60)`.
It assumes the previous minute's uses were spread evenly; Cloudflare measured this at 0.003 %
of requests wrongly allowed or refused. It needs two rows per scope instead of one per request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tether.costs.limits.base import WINDOW_S


@dataclass(frozen=True)
class Moment:
    minute: int  # epoch seconds // 60
    elapsed: float  # seconds into that minute

    @classmethod
    def at(cls, now_s: float) -> Moment:
        minute = math.floor(now_s / WINDOW_S)
        return cls(minute, now_s - minute * WINDOW_S)

    @property
    def previous_weight(self) -> float:
        """How much of the previous minute the sliding window still covers."""
        return 1.0 - self.elapsed / WINDOW_S


def used(current: int, previous: int, moment: Moment) -> float:
    return current + previous * moment.previous_weight


def retry_after(current: int, previous: int, moment: Moment, *, asked: int, limit: int) -> float:
    """Seconds until `asked` more would fit, if nothing else is counted meanwhile."""
    room = limit - asked
    if room < 0:
        return WINDOW_S  # never fits; the caller says so
    left = WINDOW_S - moment.elapsed
    if current <= room and previous > 0:
        # The previous minute's share fades within this minute.
        need = WINDOW_S * (1.0 - (room - current) / previous) - moment.elapsed
        return min(max(need, 0.0), left)
    # Wait for this minute to become the previous one, then for its share to fade.
    return left + max(WINDOW_S * (1.0 - room / current), 0.0) if current else left


def reset_after(current: int, previous: int, moment: Moment) -> float:
    """Seconds until the oldest counted use has left the window."""
    left = WINDOW_S - moment.elapsed
    if previous:
        return left
    return left + WINDOW_S if current else 0.0
