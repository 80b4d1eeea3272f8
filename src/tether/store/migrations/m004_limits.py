"""4: shared rate limits and money budgets (costs/limits/database.py), and a budget period on
virtual keys (frozen: never edit)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.schema import CreateColumn

NAME = "limits: rate windows, budgets, reservations; api_keys.budget_period"

_metadata = MetaData()

_limit_windows = Table(
    "limit_windows",
    _metadata,
    Column("scope", Text, primary_key=True),
    Column("unit", String(10), primary_key=True),
    Column("minute", Integer, primary_key=True, autoincrement=False),
    Column("used", BigInteger, nullable=False),
)

_limit_budgets = Table(
    "limit_budgets",
    _metadata,
    Column("scope", Text, primary_key=True),
    Column("bucket", String(10), primary_key=True),
    Column("spent_nano", BigInteger, nullable=False),
    Column("held_nano", BigInteger, nullable=False),
)

_limit_reservations = Table(
    "limit_reservations",
    _metadata,
    Column("id", String(40), primary_key=True),
    Column("nano", BigInteger, nullable=False),
    Column("tokens", BigInteger, nullable=False),
    Column("minute", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def apply(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
    column = CreateColumn(Column("budget_period", Text, nullable=True))
    conn.execute(text(f"ALTER TABLE api_keys ADD COLUMN {column.compile(dialect=conn.dialect)}"))
