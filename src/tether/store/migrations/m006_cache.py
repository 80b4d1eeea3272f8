"""6: the response cache: each request's cache decision and what a hit saved, and the graded
samples that calibrate semantic thresholds (frozen: never edit)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.schema import CreateColumn

NAME = "cache: request decisions and savings, graded samples"

_metadata = MetaData()

_cache_grades = Table(
    "cache_grades",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("prompt", Text),
    Column("score", Float, nullable=False),
    Column("similarity", Float, nullable=False),
    Column("right", Boolean, nullable=False),
    Column("source", String(20), nullable=False),
    Column("request_id", String(40)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_cache_grades_prompt", "prompt", "created_at"),
)

_REQUEST_COLUMNS = (
    Column("cache", String(20), nullable=True),
    Column("cache_saved_usd", Float, nullable=True),
    Column("cache_saved_s", Float, nullable=True),
    Column("cache_detail", Text, nullable=True),
)


def apply(conn: Connection) -> None:
    for column in _REQUEST_COLUMNS:
        ddl = CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE requests ADD COLUMN {ddl}"))
    _metadata.create_all(conn, checkfirst=False)
