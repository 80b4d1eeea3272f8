"""Per-day numbers from the request log since a given time: requests, tokens, cost, errors,
conformity counts and latency percentiles, one row per UTC day that has requests.

Sums and counts are grouped in SQL. Latency percentiles use PostgreSQL's `percentile_cont`; on
SQLite, which has none, the day's latencies are read in order and interpolated the same way.
Feedback calls are logged too, but these numbers are about the calls that reach a model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, case, func, select

from tether.store.dialect import is_postgresql, utc_day
from tether.store.tables import requests

MODEL_CALLS = requests.c.endpoint != "feedback"


@dataclass(frozen=True)
class DayTotals:
    day: date
    requests: int
    cost_usd: float
    input_tokens: int
    output_tokens: int
    errors: int  # status 400 and above
    valid: int  # contract requests whose output was valid
    invalid: int
    p50_ms: float | None
    p95_ms: float | None


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as PostgreSQL's percentile_cont."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def daily_totals(engine: Engine, since: datetime) -> list[DayTotals]:
    """One row per UTC day with model calls at or after `since`, in no particular order."""
    c = requests.c
    day = utc_day(c.at, engine).label("day")
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
        latency = _latencies(conn, since)
    return [
        DayTotals(
            day=_as_date(r.day),
            requests=int(r.requests),
            cost_usd=float(r.cost),
            input_tokens=int(r.tokens_in),
            output_tokens=int(r.tokens_out),
            errors=int(r.errors or 0),
            valid=int(r.valid or 0),
            invalid=int(r.invalid or 0),
            p50_ms=latency.get(_as_date(r.day), (None, None))[0],
            p95_ms=latency.get(_as_date(r.day), (None, None))[1],
        )
        for r in rows
    ]


def _latencies(conn: Connection, since: datetime) -> dict[date, tuple[float | None, float | None]]:
    c = requests.c
    day = utc_day(c.at, conn).label("day")
    if is_postgresql(conn):
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
