"""`tether models recommend --plot`: the cost-quality frontier as a PNG (matplotlib) and as one
self-contained HTML page with the PNG inlined and the scores as a table; no script, no CDN."""

from __future__ import annotations

import html
import io
from pathlib import Path

from tether.cli.cost_chart import chart_paths
from tether.cli.report_page import report_page
from tether.costs.money import usd
from tether.evals.advisor import Advice, ModelScore

_FRONTIER = "#3b6ea5"
_OTHER = "#9a9a9a"
_CHOSEN = "#2e8b57"


def frontier_png(advice: Advice, title: str) -> bytes:
    # Imported here: matplotlib takes a second to load and only this option needs it.
    import matplotlib

    matplotlib.use("Agg")  # no display; the non-interactive backend writes files only
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5), dpi=100)
    axes = figure.subplots()
    chosen = advice.recommended.model if advice.recommended else None
    for score in advice.scores:
        on_line = score.model in advice.cost_quality_frontier
        colour = _CHOSEN if score.model == chosen else _FRONTIER if on_line else _OTHER
        axes.scatter(score.cost_per_1000_usd, score.pass_rate, s=60, color=colour, zorder=3)
        label = score.model + (" (recommended)" if score.model == chosen else "")
        axes.annotate(label, (score.cost_per_1000_usd, score.pass_rate),
                      textcoords="offset points", xytext=(6, 6))  # fmt: skip
    line = sorted(
        (s for s in advice.scores if s.model in advice.cost_quality_frontier),
        key=lambda s: s.mean_cost_usd,
    )
    if len(line) > 1:
        axes.step([s.cost_per_1000_usd for s in line], [s.pass_rate for s in line],
                  where="post", color=_FRONTIER, alpha=0.6, label="frontier")  # fmt: skip
    axes.axhline(advice.threshold, color="#b22222", linestyle="--", alpha=0.6,
                 label=f"threshold {advice.threshold:.0%}")  # fmt: skip
    costs = [s.cost_per_1000_usd for s in advice.scores]
    if costs and min(costs) > 0 and max(costs) / min(costs) > 20:
        axes.set_xscale("log")  # cheap and premium models differ by orders of magnitude
    axes.margins(x=0.25)  # room for the labels beside the outermost points
    axes.set_ylim(-0.05, 1.1)
    axes.set_title(title)
    axes.set_xlabel("cost per 1,000 requests (USD)")
    axes.set_ylabel("pass rate")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _row(score: ModelScore, advice: Advice) -> str:
    e = html.escape
    marks = []
    if advice.recommended is not None and score.model == advice.recommended.model:
        marks.append("recommended")
    if score.model in advice.frontier:
        marks.append("frontier")
    values = (f"{score.passed}/{score.cases} ({score.pass_rate:.0%})", usd(score.mean_cost_usd),
              usd(score.cost_per_1000_usd), f"{score.p50_latency_s * 1000:.0f} ms",
              f"{score.p95_latency_s * 1000:.0f} ms")  # fmt: skip
    cells = f"<td>{e(score.model)}</td>" + "".join(f'<td class="n">{v}</td>' for v in values)
    return f"<tr>{cells}<td>{e(', '.join(marks))}</td></tr>"


def html_page(title: str, png: bytes, advice: Advice) -> str:
    e = html.escape
    head = "".join(
        f"<th>{name}</th>"
        for name in ("model", "pass rate", "cost / request", "cost / 1,000", "p50", "p95", "")
    )
    rows = "".join(_row(score, advice) for score in advice.scores)
    skipped = "".join(f"<li>{e(s.model)}: {e(s.reason)}</li>" for s in advice.skipped)
    chosen = advice.recommended.model if advice.recommended else "none meets the threshold"
    intro = f"<p>Threshold {advice.threshold:.0%}; recommended: <strong>{e(chosen)}</strong></p>\n"
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    listed = f"\n<p>Skipped:</p><ul>{skipped}</ul>" if skipped else ""
    return report_page(title, png, table + listed, intro=intro)


def write_frontier(target: Path, advice: Advice, title: str) -> tuple[Path, Path]:
    """`target` (with or without .png/.html) -> the PNG and HTML paths written."""
    png_path, html_path = chart_paths(target)
    png = frontier_png(advice, title)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(png)
    html_path.write_text(html_page(title, png, advice), "utf-8")
    return png_path, html_path
