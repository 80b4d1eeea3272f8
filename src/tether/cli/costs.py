"""`tether costs`: what the request log says was spent, grouped by prompt, version, model,
key or day, over a time range, and what the response cache saved; optionally a daily chart as
PNG and HTML."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ConfigOption, reported_errors, stdout
from tether.settings import Settings
from tether.store.costs import DIMENSIONS, CostReport, Dimension, cost_breakdown, daily_costs
from tether.store.engine import open_database

_AGO = re.compile(r"(\d+)([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
DEFAULT_SINCE = "30d"


def parse_moment(text: str, *, now: datetime, end: bool = False) -> datetime:
    """`7d`, `12h`, `2w` (that long before now), an ISO date (its midnight UTC; as an end,
    the next midnight, so the day is included) or an ISO time (no zone: UTC)."""
    value = text.strip()
    ago = _AGO.fullmatch(value.lower())
    if ago:
        return now - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2026-11-30), a time (2026-11-30T12:00Z) or an age (7d, 12h)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_dimensions(values: list[str]) -> list[Dimension]:
    """`--by model --by day` or `--by model,day`."""
    found: list[Dimension] = []
    for value in values:
        for part in (p.strip().lower() for p in value.split(",")):
            if part not in DIMENSIONS:
                raise typer.BadParameter(
                    f"{part!r} is not a dimension; choose from {', '.join(DIMENSIONS)}",
                    param_hint="--by",
                )
            if part not in found:
                found.append(part)
    return found


def _moment(text: str, now: datetime, option: str, *, end: bool = False) -> datetime:
    try:
        return parse_moment(text, now=now, end=end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _table(report: CostReport, title: str) -> Table:
    from tether.cli.cost_chart import CACHE_COLUMNS, cache_cells, money, row_labels, shows_cache

    table = Table(title=title, show_footer=False)
    for dimension in report.by:
        table.add_column(dimension)
    cache = shows_cache(report)
    numbers = ("requests", "failed", "tokens in", "tokens out", "cost", "failed $ share")
    for column in numbers + (CACHE_COLUMNS if cache else ()):
        table.add_column(column, justify="right")
    rows = [*report.rows, report.total]
    for number, row in enumerate(rows):
        share = row.failed_cost_share
        table.add_row(
            *(escape(label) for label in row_labels(row, len(report.by))),
            f"{row.requests:,}",
            f"{row.failed:,}",
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            money(row.cost_usd),
            f"{share:.1%}" if share is not None else "-",
            *(cache_cells(row) if cache else ()),
            end_section=number == len(rows) - 2,  # a rule above the totals row
            style="bold" if row is report.total else None,
        )
    return table


def costs(
    by: Annotated[
        list[str] | None,
        typer.Option("--by", "-b", help=f"group by {'|'.join(DIMENSIONS)} (repeat or a,b)"),
    ] = None,
    since: Annotated[
        str, typer.Option(help="start: 7d, 12h, an ISO date or time (UTC)")
    ] = DEFAULT_SINCE,
    until: Annotated[
        str | None, typer.Option(help="end (excluded; a date includes that day); default now")
    ] = None,
    chart: Annotated[
        Path | None,
        typer.Option(help="write a daily cost chart to PATH.png and PATH.html", metavar="PATH"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Spend from the request log: requests, tokens, cost, failed requests' share and the
    cache's hit rate and savings."""
    dimensions = parse_dimensions(by or ["model"])
    now = datetime.now(UTC)
    start = _moment(since, now, "--since")
    end = _moment(until, now, "--until", end=True) if until else now
    if start >= end:
        raise typer.BadParameter(f"--since ({start:%Y-%m-%d %H:%M}) is not before --until "
                                 f"({end:%Y-%m-%d %H:%M})")  # fmt: skip
    with reported_errors():
        engine = open_database(Settings.load(config).database)
        try:
            report = cost_breakdown(engine, dimensions, start, end)
            days = daily_costs(engine, start, end) if chart else []
        finally:
            engine.dispose()
    title = f"costs {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    stdout.print(_table(report, title))
    from tether.cli.cost_chart import cache_line

    stdout.print(escape(cache_line(report)))
    if chart is not None:
        from tether.cli.cost_chart import write_chart

        png, page = write_chart(chart, days, report, f"Cost per day, {title}")
        stdout.print(f"wrote {escape(str(png))} and {escape(str(page))}")


def register(app: typer.Typer) -> None:
    app.command()(costs)
