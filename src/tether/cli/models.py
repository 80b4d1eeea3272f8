"""`tether models`, `tether models recommend` and `tether preflight`: what is configured, which
model a prompt needs, and what a model can enforce."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tether.cli.common import ConfigOption, open_client, reported_errors, stdout
from tether.cli.recommend import recommend
from tether.contracts.contract import Contract
from tether.contracts.preflight import Enforcement
from tether.costs.catalog import price_for

app = typer.Typer(help="Configured models; which one a prompt needs.")


@app.callback(invoke_without_command=True)
def models(ctx: typer.Context, config: ConfigOption = None) -> None:
    """List configured models, their providers and capabilities."""
    if ctx.invoked_subcommand is not None:
        return
    with reported_errors(), open_client(config) as client:
        table = Table(title="models")
        for column in ("name", "provider / model", "enforcement", "capabilities", "context",
                       "$ per M tokens in/out", "price from"):  # fmt: skip
            table.add_column(column)
        for info in client.models():
            caps = info.capabilities
            flags = {
                "json_schema": caps.supports_json_schema,
                "grammar": caps.supports_grammar,
                "tools": caps.supports_tools,
                "stream": caps.can_stream,
            }
            table.add_row(
                info.name + (" (default)" if info.default else ""),
                f"{info.provider} / {info.upstream_model}",
                caps.enforcement,
                ", ".join(name for name, on in flags.items() if on) or "-",
                str(caps.context_window or "-"),
                f"{info.price.input_per_million:g} / {info.price.output_per_million:g}",
                price_for(info.name, client.settings.models.get(info.name)).source,
            )
        stdout.print(table)


_STYLE = {
    Enforcement.DECODING: "green",
    Enforcement.VALIDATED: "yellow",
    Enforcement.UNSUPPORTED: "bold red",
}


def preflight(
    schema: Annotated[Path, typer.Option("--schema", "-s", help="JSON Schema file")],
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    config: ConfigOption = None,
) -> None:
    """Show which schema keywords a model enforces while decoding, validates after, or refuses."""
    with reported_errors(), open_client(config) as client:
        report = client.preflight(Contract.from_file(schema), model)
        table = Table(title=f"{report.provider}/{report.model}: {report.enforcement}")
        table.add_column("keyword")
        table.add_column("where")
        table.add_column("enforcement")
        for row in report.keywords:
            where = ", ".join(p or "/" for p in row.pointers[:3])
            more = f" (+{len(row.pointers) - 3})" if len(row.pointers) > 3 else ""
            style = _STYLE[row.enforcement]
            table.add_row(row.keyword, where + more, f"[{style}]{row.enforcement.value}[/]")
        stdout.print(table)
        report.raise_for_problems()


app.command()(recommend)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
    root.command()(preflight)
