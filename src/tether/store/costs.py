"""Money spent, from the request log: totals grouped by prompt, prompt version, model, key or
day (any combination), over a time range, with what the response cache saved.

Grouping and sums run in SQL; one function per question, each a plain function of an Engine
(callers on the event loop run them in a thread). Feedback calls are logged too but reach no
model, so they are left out. "model" is the upstream model that answered, or the requested
name when none did (an unknown model, a refused call).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import Engine, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from tether.store.cache_stats import LOOKED_UP, SERVED
from tether.store.dialect import utc_bound, utc_day
from tether.store.tables import api_keys, requests

Dimension = Literal["prompt", "version", "model", "key", "day"]
DIMENSIONS: tuple[Dimension, ...] = get_args(Dimension)

_MODEL_CALLS = requests.c.endpoint != "feedback"
_FAILED = requests.c.status >= 400


@dataclass(frozen=True)
class CostRow:
    """One group's numbers; `group` holds one label per dimension (None: not recorded)."""

    group: tuple[str | None, ...]
    requests: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    failed_cost_usd: float
    # the response cache: lookups (bypassed and uncacheable requests not counted), answers it
    # served, and what they saved against their original calls
    cache_lookups: int = 0
    cache_hits: int = 0
    saved_usd: float = 0.0
    saved_s: float = 0.0

    @property
    def cache_hit_rate(self) -> float | None:
        """Share of cache lookups the cache answered; None when nothing was looked up."""
        return self.cache_hits / self.cache_lookups if self.cache_lookups else None

    @property
    def failed_cost_share(self) -> float | None:
        """Share of the money that went on requests that ended in an error."""
        return self.failed_cost_usd / self.cost_usd if self.cost_usd else None


@dataclass(frozen=True)
class CostReport:
    by: tuple[Dimension, ...]
    since: datetime | None
    until: datetime | None
    rows: list[CostRow]
    total: CostRow


def _columns(engine: Engine, dimension: Dimension) -> list[ColumnElement[Any]]:
    c = requests.c
    match dimension:
        case "prompt":
            return [c.prompt]
        case "version":  # a version means nothing without its prompt's name
            return [c.prompt, c.prompt_version]
        case "model":
            return [func.coalesce(c.upstream_model, c.model)]
        case "key":
            return [c.key_id]
        case "day":
            return [utc_day(c.at, engine)]


def _label(dimension: Dimension, values: Sequence[Any]) -> str | None:
    if dimension == "version":
        name, version = values
        return None if version is None else f"{name}@{version}"
    value = values[0]
    if value is None:
        return None
    if dimension == "day":
        return value.isoformat() if isinstance(value, date) else str(value)[:10]
    return str(value)


def cost_breakdown(
    engine: Engine,
    by: Sequence[Dimension],
    since: datetime | None = None,
    until: datetime | None = None,
) -> CostReport:
    """Requests, tokens and cost per group over [since, until), and the range's totals.

    Rows come most expensive first, or in label order (days in order) when "day" is one of
    the dimensions."""
    unknown = [d for d in by if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown dimension {unknown[0]!r}; choose from {', '.join(DIMENSIONS)}")
    dimensions = tuple(dict.fromkeys(by))  # a repeated dimension adds nothing
    since, until = utc_bound(since), utc_bound(until)
    c = requests.c
    per_dimension = [_columns(engine, d) for d in dimensions]
    keys = [col.label(f"g{i}") for i, col in enumerate(x for cols in per_dimension for x in cols)]
    sums = [
        func.count().label("requests"),
        func.coalesce(func.sum(case((_FAILED, 1), else_=0)), 0).label("failed"),
        func.coalesce(func.sum(c.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(c.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(c.cost_usd), 0.0).label("cost"),
        func.coalesce(func.sum(case((_FAILED, c.cost_usd), else_=0.0)), 0.0).label("failed_cost"),
        func.coalesce(func.sum(case((LOOKED_UP, 1), else_=0)), 0).label("cache_lookups"),
        func.coalesce(func.sum(case((SERVED, 1), else_=0)), 0).label("cache_hits"),
        func.coalesce(func.sum(c.cache_saved_usd), 0.0).label("saved_usd"),
        func.coalesce(func.sum(c.cache_saved_s), 0.0).label("saved_s"),
    ]
    query = select(*keys, *sums).where(_MODEL_CALLS)
    if since is not None:
        query = query.where(c.at >= since)
    if until is not None:
        query = query.where(c.at < until)
    if keys:
        query = query.group_by(*keys)
    with engine.connect() as conn:
        found = conn.execute(query).all()
        names = _key_names(conn, found, dimensions, per_dimension) if "key" in dimensions else {}
    rows = [_row(r, dimensions, per_dimension, names) for r in found if keys or r.requests]
    if "day" in dimensions:
        rows.sort(key=lambda r: tuple(v or "" for v in r.group))
    else:
        rows.sort(key=lambda r: (-r.cost_usd, tuple(v or "" for v in r.group)))
    return CostReport(dimensions, since, until, rows, _total(rows))


def _row(
    found: Any,
    dimensions: tuple[Dimension, ...],
    per_dimension: list[list[ColumnElement[Any]]],
    key_names: dict[str, str],
) -> CostRow:
    labels: list[str | None] = []
    position = 0
    for dimension, cols in zip(dimensions, per_dimension, strict=True):
        values = [found[position + i] for i in range(len(cols))]
        position += len(cols)
        label = _label(dimension, values)
        if dimension == "key" and label is not None and label in key_names:
            label = f"{label} ({key_names[label]})"
        labels.append(label)
    return CostRow(
        group=tuple(labels),
        requests=int(found.requests),
        failed=int(found.failed),
        input_tokens=int(found.input_tokens),
        output_tokens=int(found.output_tokens),
        cost_usd=float(found.cost),
        failed_cost_usd=float(found.failed_cost),
        cache_lookups=int(found.cache_lookups),
        cache_hits=int(found.cache_hits),
        saved_usd=float(found.saved_usd),
        saved_s=float(found.saved_s),
    )


def _key_names(
    conn: Any,
    found: Sequence[Any],
    dimensions: tuple[Dimension, ...],
    per_dimension: list[list[ColumnElement[Any]]],
) -> dict[str, str]:
    """Key id -> key name, for the keys in `found` (one query)."""
    position = sum(len(cols) for cols in per_dimension[: dimensions.index("key")])
    ids = {r[position] for r in found if r[position] is not None}
    if not ids:
        return {}
    named = conn.execute(select(api_keys.c.id, api_keys.c.name).where(api_keys.c.id.in_(ids)))
    return {row.id: row.name for row in named}


def _total(rows: Sequence[CostRow]) -> CostRow:
    return summed((), rows)


def summed(group: tuple[str | None, ...], rows: Sequence[CostRow]) -> CostRow:
    """The rows' numbers added up, under one group label."""
    return CostRow(
        group=group,
        requests=sum(r.requests for r in rows),
        failed=sum(r.failed for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        failed_cost_usd=sum(r.failed_cost_usd for r in rows),
        cache_lookups=sum(r.cache_lookups for r in rows),
        cache_hits=sum(r.cache_hits for r in rows),
        saved_usd=sum(r.saved_usd for r in rows),
        saved_s=sum(r.saved_s for r in rows),
    )


def daily_costs(engine: Engine, since: datetime, until: datetime) -> list[tuple[date, float]]:
    """Cost per UTC day over [since, until), every day of the range listed (zero when
    nothing was spent); the first and last days count only their part inside the range."""
    since, until = utc_bound(since) or since, utc_bound(until) or until
    spent = {r.group[0]: r.cost_usd for r in cost_breakdown(engine, ["day"], since, until).rows}
    first, last = since.date(), (until - timedelta(microseconds=1)).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [(d, spent.get(d.isoformat(), 0.0)) for d in days]
