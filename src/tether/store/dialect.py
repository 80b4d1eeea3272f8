"""What differs between the two databases, in one place: SQLite (the default) and PostgreSQL.

Queries ask here rather than testing the dialect themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Date, Dialect, Engine, Insert, Table, cast, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from tether.store.types import NulSafe, escape_nul


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


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert many rows (value tuples in `columns` order) with one DBAPI executemany.

    For the hot write paths: SQLAlchemy's own executemany processes every parameter of every
    row through its compiled statement, which cost more than the database's work. Here a
    column's bind processor runs only where the dialect needs one.
    """
    dialect = conn.dialect
    processors = [_bind_processor(table.c[name].type, dialect) for name in columns]
    marker = _MARKERS.get(dialect.paramstyle)
    if marker is None:
        raise NotImplementedError(f"no positional parameter marker for {dialect.paramstyle}")
    names = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
    sql = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    params = [
        tuple(
            value if process is None or value is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]
    if params:
        conn.exec_driver_sql(sql, params)


_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # sqlite3, psycopg


def _bind_processor(kind: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    if isinstance(kind, NulSafe):
        # escaping NUL matters on PostgreSQL only; elsewhere the decorator passes values through
        return escape_nul if dialect.name == "postgresql" else None
    return kind.dialect_impl(dialect).bind_processor(dialect)
