"""`tether drift PROMPT`: each stored signal of a prompt version, its recent window against the
baseline window before it (PSI and chi-square for labels, KS for numbers, mean changes for
rates), and its logged inputs (a permutation test on their mean embedding); a table, and with
--out a chart of both windows per signal as PNG and HTML."""

from __future__ import annotations

import html
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tether.cache.embedders.base import Embedder
from tether.cli.common import ConfigOption, reported_errors, stdout
from tether.cli.report_page import report_page
from tether.errors import TetherError
from tether.observe.alert_rules import AlertSettings, DriftThresholds
from tether.observe.config import NO_EMBEDDER
from tether.observe.detectors import shared_embedder
from tether.observe.drift import DriftReport, DriftResult, Sample, drift_report, is_categorical
from tether.settings import Settings
from tether.store.engine import open_database
from tether.store.signals import prompt_versions

_NUMBER = re.compile(r"\d+")


def thresholds_of(settings: Settings) -> DriftThresholds:
    """[observe.alerts.drift] when the settings have it, else the defaults."""
    observe = getattr(settings, "observe", None)
    alerts = getattr(observe, "alerts", None)
    return alerts.drift if isinstance(alerts, AlertSettings) else DriftThresholds()


def embedder_of(settings: Settings) -> Embedder | None:
    """The signal worker's embedder ([observe] evasive_embedder), for the inputs' drift: the
    same model the gateway loads; None when the settings turn it off."""
    kind = settings.observe.evasive_embedder
    return shared_embedder(kind) if kind != NO_EMBEDDER else None


def version_key(version: str | None) -> tuple[Any, ...]:
    """Versions in release order: 1.10.0 after 1.9.0."""
    parts = re.split(r"[.\-+]", version or "")
    return tuple((0, int(p), "") if _NUMBER.fullmatch(p) else (1, 0, p) for p in parts)


def latest_version(engine: Any, prompt: str) -> str | None:
    versions = [v for p, v in prompt_versions(engine) if p == prompt]
    if not versions:
        raise TetherError(
            f"no signals stored for prompt {prompt!r}",
            fix="check the name with `tether prompts list`; signals are stored once the "
            "gateway or client has served the prompt with [observe] signals = true",
        )
    return max(versions, key=version_key)


def _cell(result: DriftResult) -> str:
    if result.value is None:
        return "-"
    return f"{result.value:.3g}" if abs(result.value) >= 1e-3 else f"{result.value:.2e}"


def _table(report: DriftReport) -> Table:
    version = report.version or "(no version)"
    table = Table(title=f"drift of {report.prompt} {version}")
    for column in ("signal", "statistic"):
        table.add_column(column)
    for column in ("value", "threshold", "baseline n", "recent n"):
        table.add_column(column, justify="right")
    table.add_column("drifted?")
    for r in report.results:
        side = "<" if r.statistic.endswith("_p") else ">="
        verdict = "[bold red]yes[/]" if r.drifted else ("-" if r.value is None else "no")
        table.add_row(escape(r.signal), r.statistic, _cell(r), f"{side} {r.threshold:g}",
                      f"{r.baseline_n:,}", f"{r.recent_n:,}", verdict)  # fmt: skip
    return table


def drift(
    prompt: Annotated[str, typer.Argument(help="the prompt's name")],
    version: Annotated[
        str | None, typer.Option(help="the prompt version (default: the latest with signals)")
    ] = None,
    baseline_days: Annotated[
        float, typer.Option(help="baseline window: this many days before the recent one")
    ] = 7.0,
    recent_hours: Annotated[float, typer.Option(help="recent window: the last hours")] = 24.0,
    baseline: Annotated[
        int | None, typer.Option(help="baseline window in requests (with --recent)", min=2)
    ] = None,
    recent: Annotated[
        int | None, typer.Option(help="recent window: the latest N requests", min=2)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="write both windows per signal to PATH.png and PATH.html", metavar="PATH"
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Compare a prompt version's recent signals and inputs with its baseline: what drifted."""
    if (baseline is None) != (recent is None):
        raise typer.BadParameter("give both --baseline and --recent (requests), or neither")
    if baseline_days <= 0 or recent_hours <= 0:
        raise typer.BadParameter("--baseline-days and --recent-hours must be positive")
    now = datetime.now(UTC)
    recent_window: int | timedelta = timedelta(hours=recent_hours) if recent is None else recent
    baseline_window: int | timedelta = (
        timedelta(days=baseline_days) if baseline is None else baseline
    )
    with reported_errors():
        settings = Settings.load(config)
        engine = open_database(settings.database)
        try:
            chosen = version if version is not None else latest_version(engine, prompt)
            report = drift_report(engine, prompt, chosen, now=now, recent=recent_window,
                                  baseline=baseline_window, thresholds=thresholds_of(settings),
                                  embedder=embedder_of(settings))  # fmt: skip
        finally:
            engine.dispose()
    if not report.results:
        stdout.print(f"no signals or inputs stored for {escape(prompt)} {escape(chosen or '')}")
        raise typer.Exit(1)
    stdout.print(_table(report))
    drifted = sorted({r.signal for r in report.drifted})
    stdout.print(f"drifted: {escape(', '.join(drifted))}" if drifted else "no drift")
    if out is not None:
        png, page = write_plot(out, report)
        stdout.print(f"wrote {escape(str(png))} and {escape(str(page))}")


# -- the chart -----------------------------------------------------------------------------------


def plot_png(report: DriftReport) -> bytes:
    # Imported here: matplotlib takes a second to load and only --out needs it.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = [n for n, (b, r) in report.samples.items() if b.size or r.size]
    columns = 2 if len(names) > 1 else 1
    rows = max(1, -(-len(names) // columns))
    figure = Figure(figsize=(6 * columns, 3.2 * rows), dpi=100)
    axes_list = figure.subplots(rows, columns, squeeze=False).ravel()
    for axes, name in zip(axes_list, names, strict=False):
        old, new = report.samples[name]
        if is_categorical(name) or old.labels or new.labels:
            _bars(axes, old, new)
        else:
            _histograms(axes, old, new)
        marked = " (drifted)" if any(r.signal == name for r in report.drifted) else ""
        axes.set_title(f"{name}{marked}", fontsize=10)
        axes.legend(fontsize=8)
    for axes in axes_list[len(names) :]:
        axes.set_axis_off()
    figure.suptitle(f"{report.prompt} {report.version or ''}: baseline vs recent")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _bars(axes: Any, old: Sample, new: Sample) -> None:
    labels = sorted(set(old.labels) | set(new.labels))
    positions = range(len(labels))
    for offset, (sample, name) in enumerate(((old, "baseline"), (new, "recent"))):
        total = max(1, len(sample.labels))
        shares = [sample.labels.count(label) / total for label in labels]
        axes.bar([p + (offset - 0.5) * 0.4 for p in positions], shares, width=0.4, label=name)
    axes.set_xticks(list(positions), labels, rotation=30, fontsize=8)
    axes.set_ylabel("share")


def _histograms(axes: Any, old: Sample, new: Sample) -> None:
    values = old.values + new.values
    bins = 30 if len(set(values)) > 30 else max(1, len(set(values)))
    for sample, name in ((old, "baseline"), (new, "recent")):
        if sample.values:
            axes.hist(sample.values, bins=bins, range=(min(values), max(values)), density=True,
                      alpha=0.5, label=name)  # fmt: skip
    axes.set_ylabel("density")


def html_page(report: DriftReport, png: bytes) -> str:
    e = html.escape
    head = "".join(f"<th>{c}</th>" for c in ("signal", "statistic", "value", "threshold",
                                              "baseline n", "recent n", "drifted?"))  # fmt: skip
    body = "".join(
        f"<tr><td>{e(r.signal)}</td><td>{e(r.statistic)}</td><td class=n>{_cell(r)}</td>"
        f"<td class=n>{r.threshold:g}</td><td class=n>{r.baseline_n:,}</td>"
        f"<td class=n>{r.recent_n:,}</td><td>{'yes' if r.drifted else 'no'}</td></tr>"
        for r in report.results
    )
    title = f"Drift of {report.prompt} {report.version or ''}"
    return report_page(title, png, f"<table><tr>{head}</tr>{body}</table>")


def write_plot(target: Path, report: DriftReport) -> tuple[Path, Path]:
    stem = target.with_suffix("") if target.suffix.lower() in (".png", ".html") else target
    png_path, html_path = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".html")
    png = plot_png(report)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.write_bytes(png)
    html_path.write_text(html_page(report, png), "utf-8")
    return png_path, html_path


def register(app: typer.Typer) -> None:
    app.command()(drift)
