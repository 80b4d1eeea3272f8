"""A readiness run as Markdown and as the sections of an HTML page (every model output and input
escaped: they may hold markup), plus its charts as PNG."""

from __future__ import annotations

import html
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tether.costs.money import usd
from tether.evals.readiness import Readiness, Request, text_of
from tether.evals.readiness_edges import INJECTED, OUTCOMES, PROVIDER, REFUSED, VALID, VIOLATION
from tether.observe.calibration_error import reliability_plot

EXAMPLES_PER_OUTCOME = 3
_COLOURS = {VALID: "#2e8b57", VIOLATION: "#d2691e", REFUSED: "#3b6ea5", PROVIDER: "#9a9a9a",
            INJECTED: "#b22222"}  # fmt: skip
_CELL_CHARS = 120


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _clip(text: str, limit: int = _CELL_CHARS) -> str:
    flat = text.replace("\r", "").replace("\n", "\u21b5")  # one table row per case
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def verdict_line(r: Readiness) -> str:
    return "READY" if r.ready else "NOT READY: " + "; ".join(r.reasons)


def _said(request: Request) -> str:
    """What a request produced: its output, else its error."""
    result = request.result
    if request.valid or request.why:
        return text_of(result.output, result.raw)
    return f"{request.error_type}: {result.error}" if request.error_type else result.error


def _input_of(request: Request) -> str:
    edge = request.edge
    return str(edge.inputs.get(edge.field, "")) if edge is not None else ""


# -- tables shared by both formats -------------------------------------------------------------

Table = tuple[tuple[str, ...], Sequence[tuple[str, ...]]]


def _summary(r: Readiness) -> Table:
    head = ("prompt", "model", "requests", "with truth", "edge cases", "concurrency", "wall")
    row = (f"{r.prompt}@{r.version}", r.model, str(len(r.requests)), str(len(r.cases)),
           str(len(r.edges)), str(r.concurrency), f"{r.wall_s:.2f} s")  # fmt: skip
    return head, [row]


def _performance(r: Readiness) -> Table:
    head = ("p50", "p95", "p99", "requests/s", "cost / request", "cost / 1,000", "total cost")
    row = (*(f"{r.latency_ms(p):.0f} ms" for p in (50, 95, 99)), f"{r.throughput:.2f}",
           usd(r.cost_per_request_usd), usd(1000 * r.cost_per_request_usd),
           usd(r.total_cost_usd))  # fmt: skip
    return head, [row]


def _conformity(r: Readiness) -> Table:
    answered = r.answered
    head = ("reached a model", "met the contract", "conformity", "repaired", "extra attempts")
    row = (str(len(answered)), str(sum(q.valid for q in answered)), _pct(r.conformity),
           str(r.repaired), str(r.extra_attempts))  # fmt: skip
    return head, [row]


def _failures(r: Readiness) -> Table:
    rows = [(kind or "(no error type)", str(n)) for kind, n in r.failures_by_type.most_common()]
    return ("error type", "requests"), rows


def _cases(r: Readiness) -> Table:
    head = ("case", "source", "result", "detail", "latency", "cost")
    rows = []
    for q in r.cases:
        failed = [a for a in q.result.assertions if not a.outcome.passed]
        detail = "; ".join(f"{a.label}: {a.outcome.detail}" for a in failed)
        rows.append((q.result.case, q.source, "pass" if q.result.passed else "FAIL",
                     _clip(detail), f"{q.result.call_s * 1000:.0f} ms",
                     usd(q.result.cost_usd)))  # fmt: skip
    return head, rows


def _calibration_rows(r: Readiness) -> Table:
    rows = []
    if r.calibration is not None:
        for b in r.calibration.bins:
            if b.count:
                rows.append((f"[{b.lower:.1f}, {b.upper:.1f})", str(b.count),
                             f"{b.confidence or 0:.2f}", f"{b.accuracy or 0:.2f}"))  # fmt: skip
    return ("confidence bin", "cases", "mean confidence", "accuracy"), rows


def _outcomes(r: Readiness) -> Table:
    counts, total = r.outcomes, max(len(r.edges), 1)
    rows = [(o, str(counts[o]), f"{counts[o] / total:.0%}") for o in OUTCOMES if counts[o]]
    return ("outcome", "edge cases", "share"), rows


def _examples(r: Readiness) -> Table:
    rows = []
    for outcome in OUTCOMES:
        if outcome == VALID:
            continue  # the interesting ones are the others
        found = [q for q in r.edges if q.outcome == outcome][:EXAMPLES_PER_OUTCOME]
        rows += [(outcome, q.result.case, _clip(_input_of(q), 60), _clip(_said(q)), q.why)
                 for q in found]  # fmt: skip
    return ("outcome", "edge case", "input", "output or error", "why"), rows


def _calibration_note(r: Readiness) -> str:
    if not r.has_confidence:
        return "The output contract has no confidence field: no calibration to measure."
    c = r.calibration
    if c is None or c.total == 0:
        return "No case with a truth gave a confidence in [0, 1]: calibration not measured."
    return (
        f"Expected calibration error (ECE, 10 bins) {c.ece:.3f} over {c.total} cases "
        f"(accuracy {_pct(c.accuracy)}, mean confidence {_pct(c.mean_confidence)})."
    )


Section = tuple[str, str, list[Table]]  # title, text, tables


def _sections(r: Readiness) -> list[Section]:
    passed = sum(q.result.passed for q in r.cases)
    accuracy = f"{passed}/{len(r.cases)} cases passed ({_pct(r.accuracy)})."
    if not r.cases:
        accuracy = "No test cases: accuracy not measured."
    conformity = ("Share of the requests that reached a model whose output met the contract "
                  "(repaired: valid after more than one attempt).")  # fmt: skip
    return [
        ("Run", "", [_summary(r)]),
        ("Latency, throughput and cost",
         f"Latency of the call over the {len(r.answered)} requests that reached a model; "
         f"throughput: those per second at concurrency {r.concurrency}.", [_performance(r)]),
        ("Conformity", conformity, [_conformity(r), _failures(r)]),
        ("Accuracy", accuracy, [_cases(r)]),
        ("Calibration", _calibration_note(r), [_calibration_rows(r)]),
        ("Failure modes", "Edge cases made from the inputs schema, by outcome.",
         [_outcomes(r), _examples(r)]),
    ]  # fmt: skip


# -- Markdown ----------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return html.escape(_clip(text, 400), quote=False).replace("|", "\\|")


def _md_table(table: Table) -> str:
    head, rows = table
    if not rows:
        return ""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(r: Readiness) -> str:
    parts = [f"# Readiness of {r.prompt}@{r.version} on {_md_cell(r.model)}\n",
             f"**Verdict: {_md_cell(verdict_line(r))}**\n"]  # fmt: skip
    for title, text, tables in _sections(r):
        parts.append(f"## {title}\n")
        if text:
            parts.append(_md_cell(text) + "\n")
        parts += [t for t in map(_md_table, tables) if t]
    return "\n".join(parts)


# -- HTML --------------------------------------------------------------------------------------


def _html_table(table: Table) -> str:
    e = html.escape
    head, rows = table
    if not rows:
        return ""
    cells = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>\n"


def html_intro(r: Readiness) -> str:
    colour = "#2e8b57" if r.ready else "#b22222"
    line = html.escape(verdict_line(r))
    return f'<p style="font-size:1.2em;color:{colour}"><strong>{line}</strong></p>\n'


def html_body(r: Readiness, images: Sequence[tuple[str, bytes]] = ()) -> str:
    """The sections as HTML; `images` (alt text, PNG) go after the calibration section."""
    import base64

    e = html.escape
    parts = []
    for title, text, tables in _sections(r):
        parts.append(f"<h2>{e(title)}</h2>\n")
        if text:
            parts.append(f"<p>{e(text)}</p>\n")
        parts += [_html_table(t) for t in tables]
        if title == "Calibration":
            for alt, png in images:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f'<img alt="{e(alt)}" src="data:image/png;base64,{data}">\n')
    return "".join(parts)


# -- charts ------------------------------------------------------------------------------------


def overview_png(r: Readiness) -> bytes:
    """Latency histogram beside the edge cases' outcomes."""
    import matplotlib

    matplotlib.use("Agg")  # no display; files only
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 4), dpi=100)
    left, right = figure.subplots(1, 2)
    latencies = [q.result.call_s * 1000 for q in r.answered]
    if latencies:
        left.hist(latencies, bins=min(30, max(5, len(latencies) // 2)), color="#3b6ea5")
        for pct, style in ((50, "-"), (95, "--"), (99, ":")):
            left.axvline(r.latency_ms(pct), color="#b22222", linestyle=style,
                         label=f"p{pct} {r.latency_ms(pct):.0f} ms")  # fmt: skip
        left.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    left.set_title("latency of the model call")
    left.set_xlabel("ms")
    left.set_ylabel("requests")
    counts = r.outcomes
    names = [o for o in OUTCOMES if counts[o]]
    right.barh(names, [counts[o] for o in names], color=[_COLOURS[o] for o in names])
    right.invert_yaxis()
    if not names:
        right.text(0.5, 0.5, "no edge cases", ha="center", transform=right.transAxes)
    for axes in (left.yaxis, right.xaxis):
        axes.set_major_locator(MaxNLocator(integer=True))  # counts of requests
    right.set_title("edge cases by outcome")
    right.set_xlabel("edge cases")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def reliability_png(r: Readiness) -> bytes | None:
    if r.calibration is None or r.calibration.total == 0:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = reliability_plot(r.calibration, Path(folder) / "reliability.png",
                                title=f"{r.prompt}@{r.version}")  # fmt: skip
        return path.read_bytes()
