"""Numbered migrations, each applied once in its own transaction and recorded in
`schema_migrations`. A new migration is appended to MIGRATIONS; existing ones never change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from tether.store import tables

Migration = tuple[int, str, Callable[[Connection], None]]


def _prompt_registry(conn: Connection) -> None:
    for table in (tables.prompt_versions, tables.prompt_labels, tables.label_events):
        table.create(conn)


def _gateway(conn: Connection) -> None:
    for table in (tables.api_keys, tables.requests, tables.feedback):
        table.create(conn)


MIGRATIONS: list[Migration] = [
    (1, "prompt registry: versions, labels, label events", _prompt_registry),
    (2, "gateway: virtual keys, request log, feedback", _gateway),
]


def migrate(engine: Engine) -> list[int]:
    """Apply every migration the database lacks; return the numbers applied."""
    tables.schema_migrations.create(engine, checkfirst=True)
    with engine.connect() as conn:
        done = set(conn.execute(select(tables.schema_migrations.c.number)).scalars())
    applied: list[int] = []
    for number, name, apply in MIGRATIONS:
        if number in done:
            continue
        try:
            with engine.begin() as conn:
                # Recording first makes a concurrent migrator fail on the primary key
                # before it creates anything twice.
                conn.execute(
                    insert(tables.schema_migrations).values(
                        number=number, name=name, applied_at=datetime.now(UTC)
                    )
                )
                apply(conn)
        except IntegrityError:
            continue  # another process applied it first
        applied.append(number)
    return applied
