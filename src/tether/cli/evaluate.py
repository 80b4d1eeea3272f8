"""`tether evaluate [--prompt P] [--since 1d] [--limit N]`: run the `[[evaluations]]` checks now
on a sample of each prompt's logged requests, store the results, queue failures (and a sample)
for review, and show a summary per prompt and evaluator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ConfigOption, open_client, progress_bar, reported_errors, stdout
from tether.errors import ConfigError
from tether.evals.production import (
    DEFAULT_LIMIT,
    PromptSummary,
    RequestEvaluation,
    evaluate_logged,
    evaluations_of,
)
from tether.store.engine import open_database


def _since(text: str | None) -> datetime | None:
    from tether.cli.costs import parse_moment

    if text is None:
        return None
    try:
        return parse_moment(text, now=datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


def _table(summaries: list[PromptSummary]) -> Table:
    table = Table(title="evaluations of logged requests")
    table.add_column("prompt")
    table.add_column("evaluator")
    for column in ("evaluated", "passed", "failed", "queued for review"):
        table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(escape(s.prompt), "(all)", f"{s.evaluated:,}", f"{s.passed:,}",
                      f"[red]{s.failed:,}[/]" if s.failed else "0", f"{s.queued:,}")  # fmt: skip
        for name, (passed, total) in s.by_evaluator.items():
            failed = total - passed
            table.add_row("", escape(name), f"{total:,}", f"{passed:,}",
                          f"[red]{failed:,}[/]" if failed else "0", "")  # fmt: skip
    return table


def evaluate(
    prompt: Annotated[str | None, typer.Option(help="only this prompt's evaluations")] = None,
    since: Annotated[
        str | None, typer.Option(help="only requests since: an age (1d, 12h) or a date")
    ] = None,
    limit: Annotated[
        int, typer.Option(help="at most this many requests per prompt", min=1)
    ] = DEFAULT_LIMIT,
    config: ConfigOption = None,
) -> None:
    """Run the configured evaluators on a sample of logged requests not yet evaluated."""
    start = _since(since)
    with reported_errors():
        client = open_client(config)
        try:
            entries = evaluations_of(client.settings)
            if not entries:
                raise ConfigError(
                    "no evaluations are configured",
                    file=client.settings.source,
                    field="evaluations",
                    fix='add [[evaluations]] with prompt = "NAME", sample = 0.1 and asserts = '
                    "[...] to the settings file",
                )
            engine = open_database(client.settings.database)
            try:
                with progress_bar() as bar:
                    task = bar.add_task("evaluating", total=None)

                    def advance(result: RequestEvaluation) -> None:
                        bar.advance(task)

                    summaries = evaluate_logged(engine, client, entries, since=start, limit=limit,
                                                prompt=prompt, on_request=advance)  # fmt: skip
            finally:
                engine.dispose()
        finally:
            client.close()
    if not any(s.evaluated for s in summaries):
        stdout.print("no sampled requests left to evaluate")
        return
    stdout.print(_table(summaries))


def register(app: typer.Typer) -> None:
    app.command()(evaluate)
