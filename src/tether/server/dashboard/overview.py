"""The overview page's data: per-day cost, conformity and latency percentiles over a window of
days, and the window's totals. The queries live in `tether.store.daily_stats`; this module
lays their rows out over the window (a day without requests shows as empty) and sums them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Engine

from tether.store.daily_stats import daily_totals

WINDOW_DAYS = 30


@dataclass(frozen=True)
class DayStats:
    day: date
    requests: int = 0
    cost_usd: float = 0.0
    valid: int = 0
    invalid: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None

    @property
    def conformity(self) -> float | None:
        """Share of contract requests whose output was valid; None when there were none."""
        checked = self.valid + self.invalid
        return self.valid / checked if checked else None


@dataclass(frozen=True)
class Overview:
    days: list[DayStats]
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    errors: int
    valid: int
    invalid: int

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def conformity(self) -> float | None:
        checked = self.valid + self.invalid
        return self.valid / checked if checked else None


def overview(engine: Engine, today: date, window: int = WINDOW_DAYS) -> Overview:
    """Per-day numbers for the `window` days that end with `today` (UTC), and their totals."""
    first = today - timedelta(days=window - 1)
    rows = daily_totals(engine, datetime.combine(first, time(), UTC))
    by_day = {
        r.day: DayStats(r.day, r.requests, r.cost_usd, r.valid, r.invalid, r.p50_ms, r.p95_ms)
        for r in rows
    }
    days = [by_day.get(first + timedelta(days=i), DayStats(first + timedelta(days=i)))
            for i in range(window)]  # fmt: skip
    return Overview(
        days=days,
        requests=sum(r.requests for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        errors=sum(r.errors for r in rows),
        valid=sum(d.valid for d in days),
        invalid=sum(d.invalid for d in days),
    )
