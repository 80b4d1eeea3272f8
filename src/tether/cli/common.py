"""What every command shares: loading settings, building a client, reporting errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tether.client import Client
from tether.errors import TetherError
from tether.settings import Settings

stdout = Console()
stderr = Console(stderr=True)


def progress_bar(console: Console = stdout) -> Progress:
    """The CLI's progress bar for long work: what is done, of how many, for how long; gone
    once the work is."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="settings file (default: ./tether.toml or $TETHER_CONFIG)"),
]


@contextmanager
def reported_errors() -> Iterator[None]:
    """Show a tether error as its message and fix, and exit 1, instead of a traceback."""
    try:
        yield
    except TetherError as exc:
        stderr.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        if exc.fix:
            stderr.print(f"[yellow]fix:[/] {escape(exc.fix)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


def open_client(config: Path | None) -> Client:
    client = Client(Settings.load(config))
    client.entry = "cli"  # its calls are logged as the CLI's
    return client


class CacheUse(StrEnum):
    """What a single call allows the response cache, as the library's `cache=` and HTTP's
    Cache-Control say it: use it, ask for a fresh answer (which replaces the cached one), or
    keep the call out of it."""

    use = "use"
    refresh = "refresh"
    off = "off"


CacheOption = Annotated[
    CacheUse,
    typer.Option("--cache", help="use the cache, refresh it (a fresh answer, filed) or stay off"),
]
