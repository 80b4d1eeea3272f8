"""`tether costs --chart`: daily cost as a PNG (matplotlib) and as one self-contained HTML page
with the PNG inlined and the breakdown as a table (with the cache's savings); no script, no
CDN, nothing fetched."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from tether.cli.report_page import report_page
from tether.store.costs import CostReport, CostRow

CACHE_COLUMNS = ("cache hit rate", "saved", "time saved")


def money(value: float) -> str:
    """USD with enough decimals for per-request costs (fractions of a cent)."""
    if value == 0 or abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.6f}".rstrip("0")


def duration(seconds: float) -> str:
    """Time saved, in the largest unit that keeps it readable."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:,.1f} h"


def shows_cache(report: CostReport) -> bool:
    """The cache columns appear once the range has a cache lookup (else they say nothing)."""
    return report.total.cache_lookups > 0


def cache_cells(row: CostRow) -> tuple[str, str, str]:
    """Hit rate, money saved, time saved."""
    rate = row.cache_hit_rate
    return (
        f"{rate:.1%}" if rate is not None else "-",
        money(row.saved_usd),
        duration(row.saved_s),
    )


def cache_line(report: CostReport) -> str:
    """One sentence on the range's cache use, below the table."""
    total = report.total
    if not total.cache_lookups:
        return "cache: no lookups in this range"
    rate = total.cache_hit_rate or 0.0
    return (
        f"cache: {total.cache_hits:,} of {total.cache_lookups:,} lookups answered ({rate:.1%}), "
        f"saved {money(total.saved_usd)} and {duration(total.saved_s)}"
    )


def row_labels(row: CostRow, width: int) -> tuple[str, ...]:
    """A row's group labels for display; the totals row says "total"."""
    if not row.group:
        return ("total",) + ("",) * (width - 1) if width else ()
    return tuple(label if label is not None else "(none)" for label in row.group)


def chart_paths(target: Path) -> tuple[Path, Path]:
    """`costs` or `costs.png` or `costs.html` -> (costs.png, costs.html)."""
    stem = target.with_suffix("") if target.suffix.lower() in (".png", ".html") else target
    return stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".html")


def daily_png(days: Sequence[tuple[date, float]], title: str) -> bytes:
    # Imported here: matplotlib takes a second to load and only this option needs it.
    import matplotlib

    matplotlib.use("Agg")  # no display; the non-interactive backend writes files only
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=100)
    axes = figure.subplots()
    positions = list(range(len(days)))
    axes.bar(positions, [cost for _, cost in days], color="#3b6ea5")
    # about ten labels, counted back from the last day so the latest is always labelled
    labelled = positions[::-1][:: max(1, len(days) // 10)][::-1]
    axes.set_xticks(labelled, [days[i][0].isoformat() for i in labelled])
    axes.set_title(title)
    axes.set_xlabel("day (UTC)")
    axes.set_ylabel("cost (USD)")
    axes.grid(axis="y", alpha=0.3)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def html_page(title: str, png: bytes, report: CostReport) -> str:
    """The chart and the breakdown table; every label is escaped."""
    e = html.escape
    head = "".join(f"<th>{e(d)}</th>" for d in report.by)
    cache = shows_cache(report)
    numbers: tuple[str, ...] = ("requests", "failed", "tokens in", "tokens out", "cost",
                                "failed cost share", *(CACHE_COLUMNS if cache else ()))  # fmt: skip
    head += "".join(f'<th class="n">{name}</th>' for name in numbers)
    body = []
    for row in [*report.rows, report.total]:
        cells = "".join(f"<td>{e(v)}</td>" for v in row_labels(row, len(report.by)))
        share = row.failed_cost_share
        values = (f"{row.requests:,}", f"{row.failed:,}", f"{row.input_tokens:,}",
                  f"{row.output_tokens:,}", money(row.cost_usd),
                  f"{share:.1%}" if share is not None else "-",
                  *(cache_cells(row) if cache else ()))  # fmt: skip
        cells += "".join(f'<td class="n">{v}</td>' for v in values)
        body.append(f"<tr{' class=total' if not row.group else ''}>{cells}</tr>")
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return report_page(title, png, f"{table}<p>{e(cache_line(report))}</p>")


def write_chart(
    target: Path, days: Sequence[tuple[date, float]], report: CostReport, title: str
) -> tuple[Path, Path]:
    png_path, html_path = chart_paths(target)
    png = daily_png(days, title)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(png)
    html_path.write_text(html_page(title, png, report), "utf-8")
    return png_path, html_path
