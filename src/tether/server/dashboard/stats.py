"""The overview's numbers: per-day cost, conformity and latency percentiles over a window of
days, and the window's totals.

Sums and counts are grouped in SQL. Latency percentiles use PostgreSQL's `percentile_cont`; on
SQLite, which has none, the day's latencies are read in order and interpolated the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Date, Engine, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from tether.store.tables import requests

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


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _day(engine: Engine) -> ColumnElement[Any]:
    if engine.dialect.name == "postgresql":
        return cast(func.timezone("UTC", requests.c.at), Date)
    return func.date(requests.c.at)  # SQLite stores UTC text: 'YYYY-MM-DD HH:MM:SS...'


# Feedback calls are logged too, but the overview is about the calls that reach a model.
MODEL_CALLS = requests.c.endpoint != "feedback"


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def overview(engine: Engine, today: date, window: int = WINDOW_DAYS) -> Overview:
    """Per-day numbers for the `window` days that end with `today` (UTC), and their totals."""
    first = today - timedelta(days=window - 1)
    since = datetime.combine(first, time(), UTC)
    c = requests.c
    day = _day(engine).label("day")
    counted = select(
        day,
        func.count().label("requests"),
        func.coalesce(func.sum(c.cost_usd), 0.0).label("cost"),
        func.coalesce(func.sum(c.input_tokens), 0).label("tokens_in"),
        func.coalesce(func.sum(c.output_tokens), 0).label("tokens_out"),
        func.sum(case((c.status >= 400, 1), else_=0)).label("errors"),
        func.sum(case((c.valid.is_(True), 1), else_=0)).label("valid"),
        func.sum(case((c.valid.is_(False), 1), else_=0)).label("invalid"),
    ).where(c.at >= since, MODEL_CALLS)
    with engine.connect() as conn:
        rows = conn.execute(counted.group_by(day)).all()
        latency = _latencies(engine, conn, since)
    by_day = {
        _as_date(r.day): DayStats(
            day=_as_date(r.day),
            requests=int(r.requests),
            cost_usd=float(r.cost),
            valid=int(r.valid or 0),
            invalid=int(r.invalid or 0),
            p50_ms=latency.get(_as_date(r.day), (None, None))[0],
            p95_ms=latency.get(_as_date(r.day), (None, None))[1],
        )
        for r in rows
    }
    days = [by_day.get(first + timedelta(days=i), DayStats(first + timedelta(days=i)))
            for i in range(window)]  # fmt: skip
    return Overview(
        days=days,
        requests=sum(int(r.requests) for r in rows),
        input_tokens=sum(int(r.tokens_in) for r in rows),
        output_tokens=sum(int(r.tokens_out) for r in rows),
        cost_usd=sum(float(r.cost) for r in rows),
        errors=sum(int(r.errors or 0) for r in rows),
        valid=sum(d.valid for d in days),
        invalid=sum(d.invalid for d in days),
    )


def _latencies(
    engine: Engine, conn: Connection, since: datetime
) -> dict[date, tuple[float | None, float | None]]:
    c = requests.c
    day = _day(engine).label("day")
    if engine.dialect.name == "postgresql":
        query = (
            select(
                day,
                func.percentile_cont(0.5).within_group(c.latency_ms).label("p50"),
                func.percentile_cont(0.95).within_group(c.latency_ms).label("p95"),
            )
            .where(c.at >= since, MODEL_CALLS)
            .group_by(day)
        )
        return {_as_date(r.day): (float(r.p50), float(r.p95)) for r in conn.execute(query)}
    ordered = (
        select(day, c.latency_ms).where(c.at >= since, MODEL_CALLS).order_by(day, c.latency_ms)
    )
    return {
        d: (percentile(v, 0.5), percentile(v, 0.95)) for d, v in _grouped(conn.execute(ordered))
    }


def _grouped(rows: Iterable[Any]) -> Iterable[tuple[date, list[float]]]:
    current: date | None = None
    values: list[float] = []
    for raw_day, latency in rows:
        found = _as_date(raw_day)
        if found != current:
            if current is not None:
                yield current, values
            current, values = found, []
        values.append(float(latency))
    if current is not None:
        yield current, values
