"""The costs page's data: spend over a chosen number of days (UTC) by model, prompt, prompt
version and key, the daily cost chart and the period's totals. The queries live in
`tether.store.costs`; this module picks the period and shapes the rows for the template."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from tether.server.dashboard import charts
from tether.store.costs import CostRow, Dimension, cost_breakdown, daily_costs

PERIODS = (7, 30, 90)  # days the page offers
DEFAULT_PERIOD = 30
BREAKDOWNS: tuple[tuple[Dimension, str], ...] = (
    ("model", "By model (the model that answered)"),
    ("prompt", "By prompt"),
    ("version", "By prompt version"),
    ("key", "By API key"),
)
MAX_ROWS = 50  # per table; the rest are summed into one row


@dataclass(frozen=True)
class Breakdown:
    dimension: Dimension
    title: str
    rows: list[CostRow]
    rest: CostRow | None  # the rows past MAX_ROWS, summed


@dataclass(frozen=True)
class CostsPage:
    period: int
    first: date
    last: date
    total: CostRow
    daily: list[tuple[date, float]]
    breakdowns: list[Breakdown]


def parse_period(params: Mapping[str, str]) -> tuple[int, list[str]]:
    """The `days` query parameter, one of PERIODS; a message when another value was ignored."""
    raw = params.get("days", "").strip()
    if not raw:
        return DEFAULT_PERIOD, []
    if raw.isdigit() and int(raw) in PERIODS:
        return int(raw), []
    choices = ", ".join(str(p) for p in PERIODS)
    return DEFAULT_PERIOD, [f"days: choose one of {choices} (showing {DEFAULT_PERIOD})"]


def _rest(rows: list[CostRow]) -> CostRow | None:
    if not rows:
        return None
    return CostRow(
        group=(f"{len(rows)} more",),
        requests=sum(r.requests for r in rows),
        failed=sum(r.failed for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        failed_cost_usd=sum(r.failed_cost_usd for r in rows),
    )


def costs_page(engine: Engine, today: date, period: int) -> CostsPage:
    """The `period` days that end with `today` (UTC), today included."""
    first = today - timedelta(days=period - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    until = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    breakdowns = []
    total: CostRow | None = None
    for dimension, title in BREAKDOWNS:
        report = cost_breakdown(engine, [dimension], since, until)
        total = report.total
        shown = report.rows[:MAX_ROWS]
        breakdowns.append(Breakdown(dimension, title, shown, _rest(report.rows[MAX_ROWS:])))
    assert total is not None  # BREAKDOWNS is never empty
    daily = daily_costs(engine, since, until)
    return CostsPage(period, first, today, total, daily, breakdowns)


def daily_chart(page: CostsPage) -> charts.Chart:
    days = [d for d, _ in page.daily]
    return charts.bar_chart(
        "Cost per day",
        "cost (USD)",
        days,
        [cost for _, cost in page.daily],
        charts.usd,
        label_every=max(charts.LABEL_EVERY, page.period // 12),
    )
