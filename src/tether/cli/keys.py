"""`tether keys ...`: virtual API keys for the gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tether.cli.common import ConfigOption, reported_errors, stdout
from tether.server.keys import KeyStore, parse_duration, parse_expiry
from tether.settings import Settings
from tether.store.engine import open_database


class BudgetPeriod(StrEnum):
    day = "day"
    month = "month"
    total = "total"


app = typer.Typer(help="Virtual API keys for the gateway.", no_args_is_help=True)


def _store(config: Path | None) -> KeyStore:
    settings = Settings.load(config)
    return KeyStore(open_database(settings.database))


def _duration(value: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _moment(value: str) -> datetime:
    try:
        return parse_expiry(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def create(
    name: str,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="allowed model (repeat)")
    ] = None,
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", help="allowed prompt (repeat)")
    ] = None,
    rpm: Annotated[int | None, typer.Option(min=1, help="requests per minute")] = None,
    tpm: Annotated[int | None, typer.Option(min=1, help="tokens per minute")] = None,
    budget: Annotated[float | None, typer.Option(min=0, help="money budget in USD")] = None,
    budget_period: Annotated[
        BudgetPeriod, typer.Option(help="when the budget starts afresh (calendar, UTC)")
    ] = BudgetPeriod.total,
    expires_in: Annotated[
        timedelta | None,
        typer.Option(parser=_duration, metavar="30d", help="expire after 45s, 90m, 12h, 30d, 2w"),
    ] = None,
    expires_at: Annotated[
        datetime | None,
        typer.Option(parser=_moment, metavar="ISO", help="expire at a time with a timezone"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key. The secret is printed once, on the last line; store it now."""
    if expires_in is not None and expires_at is not None:
        raise typer.BadParameter("give --expires-in or --expires-at, not both")
    expiry = datetime.now(UTC) + expires_in if expires_in is not None else expires_at
    with reported_errors():
        key, secret = _store(config).create(
            name,
            models=model,
            prompts=prompt,
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget,
            budget_period=budget_period.value,
            expires_at=expiry,
        )
        stdout.print(f"created {key.id} ({escape(name)}); the secret is shown only once:")
        print(secret)


@app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """Keys with their scopes and limits (never their secrets)."""
    with reported_errors():
        table = Table(title="keys")
        for column in ("id", "name", "prefix", "models", "prompts", "rpm", "tpm", "spent $",
                       "budget $", "created", "expires", "revoked"):  # fmt: skip
            table.add_column(column, justify="right" if column.endswith("$") else "left")
        store = _store(config)
        spent = store.spent()
        for key in store.list():
            table.add_row(
                key.id,
                escape(key.name),
                key.prefix + "…",
                escape(", ".join(key.models) or "all"),
                escape(", ".join(key.prompts) or "all"),
                str(key.rpm or "-"),
                str(key.tpm or "-"),
                f"{spent.get(key.id, 0.0):.6f}",
                f"{key.budget_usd:g}/{key.budget_period}" if key.budget_usd is not None else "-",
                f"{key.created_at:%Y-%m-%d %H:%M}",
                f"{key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "",
                f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
            )
        stdout.print(table)


@app.command()
def revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke a key: every replica refuses it within seconds."""
    with reported_errors():
        key = _store(config).revoke(key_id)
        stdout.print(f"revoked {key.id} ({escape(key.name)})")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="keys")
