"""`tether canary run [PROMPT]`: run the canaries now (a prompt's test cases and the reference
requests under [[observe.alerts.canaries]]) and show which failed, and why."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ConfigOption, open_client, reported_errors, stdout
from tether.errors import TetherError
from tether.observe.canaries import CanaryResult, has_canaries, run_canaries

app = typer.Typer(help="Canaries: reference requests with expected answers.", no_args_is_help=True)


def _table(results: list[CanaryResult]) -> Table:
    table = Table(title="canaries")
    for column in ("prompt", "canary", "passed"):
        table.add_column(column, overflow="fold")
    table.add_column("latency", justify="right")
    table.add_column("why it failed", overflow="fold")
    for r in results:
        table.add_row(escape(f"{r.prompt}@{r.version}"), escape(r.canary),
                      "[green]yes[/]" if r.passed else "[bold red]NO[/]",
                      f"{r.latency_s * 1000:,.0f} ms", escape(r.why))  # fmt: skip
    return table


def run(
    prompt: Annotated[
        str | None,
        typer.Argument(help="one registered prompt (default: every canary in the settings)"),
    ] = None,
    alert: Annotated[
        bool, typer.Option(help="fire the canary rule through the alert sinks on failures")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Run the canaries through the pipeline now; exit 1 if any failed."""
    with reported_errors(), open_client(config) as client:
        settings = client.settings.observe.alerts
        if prompt is None and not has_canaries(settings):
            raise TetherError(
                "no canaries to run",
                fix="name a prompt with test cases, or set [observe.alerts.canary] prompts "
                "or [[observe.alerts.canaries]] in the settings",
            )
        results = run_canaries(client, settings, prompt, alert=alert)
        stdout.print(_table(results))
        failed = sum(1 for r in results if not r.passed)
        stdout.print(f"{len(results) - failed} passed, {failed} failed", highlight=False)
        if failed:
            raise typer.Exit(1)


app.command("run")(run)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="canary")
