"""Numbered migrations, each applied once in its own transaction and recorded in
`schema_migrations`.

Each migration is one module holding its own DDL as it was when written (`m<NNN>_<what>.py`):
never today's `tables.py`, which would make an early migration create columns that a later
one then fails to add. A new migration is a new module appended to MIGRATIONS; existing ones
never change. `tests/store/test_migrations.py` checks that the result matches `tables.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from tether.store.migrations import (
    m001_prompt_registry,
    m002_gateway,
    m003_key_expiry,
    m004_limits,
    m005_request_route,
    m006_cache,
    m007_signals,
    m008_evaluations,
    m009_signal_rows,
)

Migration = tuple[int, str, Callable[[Connection], None]]

MIGRATIONS: list[Migration] = [
    (1, m001_prompt_registry.NAME, m001_prompt_registry.apply),
    (2, m002_gateway.NAME, m002_gateway.apply),
    (3, m003_key_expiry.NAME, m003_key_expiry.apply),
    (4, m004_limits.NAME, m004_limits.apply),
    (5, m005_request_route.NAME, m005_request_route.apply),
    (6, m006_cache.NAME, m006_cache.apply),
    (7, m007_signals.NAME, m007_signals.apply),
    (8, m008_evaluations.NAME, m008_evaluations.apply),
    (9, m009_signal_rows.NAME, m009_signal_rows.apply),
]

_metadata = MetaData()
schema_migrations = Table(
    "schema_migrations",
    _metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def migrate(engine: Engine, *, upto: int | None = None) -> list[int]:
    """Apply every migration the database lacks (up to number `upto`, default all); return
    the numbers applied."""
    schema_migrations.create(engine, checkfirst=True)
    with engine.connect() as conn:
        done = set(conn.execute(select(schema_migrations.c.number)).scalars())
    applied: list[int] = []
    for number, name, apply in MIGRATIONS:
        if number in done or (upto is not None and number > upto):
            continue
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    # DDL may wait behind running gateways' reads; the gateway's short lock
                    # timeout is for requests, not for a one-off schema change.
                    conn.execute(text("SET LOCAL lock_timeout = '60s'"))
                    conn.execute(text("SET LOCAL statement_timeout = 0"))
                # Recording first makes a concurrent migrator fail on the primary key
                # before it creates anything twice.
                conn.execute(
                    insert(schema_migrations).values(
                        number=number, name=name, applied_at=datetime.now(UTC)
                    )
                )
                apply(conn)
        except IntegrityError:
            continue  # another process applied it first
        applied.append(number)
    return applied
