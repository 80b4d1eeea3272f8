"""The costs page's data: spend over a chosen number of days (UTC) by model, prompt, prompt
version and key, the daily cost chart, the period's totals and what the response cache saved.
The queries live in `tether.store.costs` and `tether.store.cache_stats`; this module picks the
period and shapes the rows for the template."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from tether.server.dashboard import charts
from tether.store.cache_stats import CacheCounts, CacheSummary, cache_summary
from tether.store.costs import CostRow, Dimension, cost_breakdown, daily_costs, summed

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
    cache: CacheSummary

    @property
    def shows_cache(self) -> bool:
        """The breakdowns get cache columns once the period has a lookup."""
        return self.total.cache_lookups > 0

    @property
    def cache_prompts(self) -> list[CacheCounts]:
        return self.cache.prompts[:MAX_ROWS]


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
    return summed((f"{len(rows)} more",), rows)


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
    cache = cache_summary(engine, since, None, until=until)
    return CostsPage(period, first, today, total, daily, breakdowns, cache)


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
