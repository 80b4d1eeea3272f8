"""5: each request's routing: the policy's decision and reason, models skipped, the model
that answered (frozen: never edit)."""

from __future__ import annotations

from sqlalchemy import Column, Connection, Text, text
from sqlalchemy.schema import CreateColumn

NAME = "requests: route"


def apply(conn: Connection) -> None:
    column = CreateColumn(Column("route", Text, nullable=True))
    conn.execute(text(f"ALTER TABLE requests ADD COLUMN {column.compile(dialect=conn.dialect)}"))
