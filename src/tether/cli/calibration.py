"""`tether calibration PROMPT`: how well a prompt's confidence field matches how often it is
right (feedback and canary verdicts): the ECE, a table per confidence bin, a reliability
diagram."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ConfigOption, reported_errors, stdout
from tether.observe.calibration_error import (
    CalibrationSample,
    Reliability,
    calibration_of_prompt,
    reliability_plot,
)
from tether.server.keys import parse_duration
from tether.settings import Settings
from tether.store.engine import open_database

ALL = "all"


def _table(result: Reliability) -> Table:
    table = Table(title="reliability by confidence bin")
    table.add_column("confidence bin")
    for column in ("answers", "mean confidence", "accuracy", "gap"):
        table.add_column(column, justify="right")
    for b in result.bins:
        if not b.count:
            continue
        closing = "]" if b.upper >= 1 else ")"
        gap = b.gap or 0.0
        style = "bold red" if abs(gap) > 0.15 else ""
        table.add_row(f"[{b.lower:.2f}, {b.upper:.2f}{closing}", f"{b.count:,}",
                      f"{b.confidence:.3f}", f"{b.accuracy:.3f}",
                      f"[{style}]{gap:+.3f}[/]" if style else f"{gap:+.3f}")  # fmt: skip
    return table


def _summary(sample: CalibrationSample, result: Reliability, max_ece: float | None) -> str:
    verdict = ""
    if max_ece is not None:
        above = result.ece > max_ece
        verdict = (
            f" ([bold red]above[/] max_ece {max_ece:g})" if above else f" (max_ece {max_ece:g})"
        )
    return (
        f"ECE {result.ece:.4f}{verdict}\n"
        f"sample {sample.size:,} answers ({sample.from_feedback:,} with feedback, "
        f"{sample.from_canaries:,} canary runs; {sample.skipped:,} without a usable confidence)\n"
        f"accuracy {result.accuracy or 0:.3f}, mean confidence {result.mean_confidence or 0:.3f}"
    )


def calibration(
    prompt: Annotated[str, typer.Argument(help="the prompt's name")],
    version: Annotated[
        str | None, typer.Option(help="one prompt version (default: every version)")
    ] = None,
    since: Annotated[
        str, typer.Option(help=f"requests this recent: 7d, 24h, 90m, 2w, or {ALL}")
    ] = "7d",
    bins: Annotated[int, typer.Option(help="equal-width confidence bins", min=1, max=100)] = 10,
    out: Annotated[
        Path | None, typer.Option(help="write the reliability diagram to this PNG")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """A prompt's expected calibration error: stated confidence against how often it was right
    (feedback scores of 0.5 or more, passed canaries)."""
    try:
        start = None if since == ALL else datetime.now(UTC) - parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    with reported_errors():
        settings = Settings.load(config)
        engine = open_database(settings.database)
        try:
            sample = calibration_of_prompt(engine, prompt, version, start)
        finally:
            engine.dispose()
    which = f"{prompt} {version}" if version else f"{prompt} (every version)"
    if sample.size == 0:
        stdout.print(
            f"no answers of {escape(which)} with both a confidence and known truth since "
            f"{escape(since)}: give feedback on its requests, or run `tether canary run "
            f"{escape(prompt)}`",
            highlight=False,
        )
        raise typer.Exit(1)
    result = sample.reliability(bins)
    wanted = settings.observe.alerts.calibration
    stdout.print(f"[bold]{escape(which)}[/]", highlight=False)
    stdout.print(_summary(sample, result, wanted.max_ece if wanted else None), highlight=False)
    stdout.print(_table(result))
    if out is not None:
        reliability_plot(result, out, title=which)
        stdout.print(f"wrote {escape(str(out))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(calibration)
