"""What differs between the two databases, in one place: SQLite (the default) and PostgreSQL.

Queries ask here rather than testing the dialect themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Date, Engine, Insert, Table, cast, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement


def is_postgresql(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "postgresql"


def is_sqlite(bind: Engine | Connection) -> bool:
    return bind.dialect.name == "sqlite"


def utc_day(column: ColumnElement[Any], bind: Engine | Connection) -> ColumnElement[Any]:
    """The UTC calendar day of a stored timestamp (a date on PostgreSQL, 'YYYY-MM-DD' text on
    SQLite)."""
    # PostgreSQL's day depends on the session's time zone unless the timestamp is moved to UTC
    # first; SQLite stores UTC text ('YYYY-MM-DD HH:MM:SS...').
    if is_postgresql(bind):
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def utc(value: datetime) -> datetime:
    """A stored timestamp with its zone: SQLite drops it (the value was stored in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def utc_bound(moment: datetime | None) -> datetime | None:
    """A query's time bound in UTC; a bound without a zone is taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def insert_ignoring_duplicates(
    table: Table, bind: Engine | Connection, index_elements: Sequence[str]
) -> Insert:
    """An INSERT that skips rows whose `index_elements` are already stored (a plain INSERT
    on a database that has no such clause)."""
    name = bind.dialect.name
    if name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    if name == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    return insert(table)
