"""3: virtual keys may expire (frozen: never edit)."""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, text
from sqlalchemy.schema import CreateColumn

NAME = "virtual keys: expires_at"


def apply(conn: Connection) -> None:
    column = CreateColumn(Column("expires_at", DateTime(timezone=True), nullable=True))
    conn.execute(text(f"ALTER TABLE api_keys ADD COLUMN {column.compile(dialect=conn.dialect)}"))
