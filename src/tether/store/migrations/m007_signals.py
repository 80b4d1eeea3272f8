"""7: per-request signals (observe/signals.py) for drift, and the alerts raised on them
(frozen: never edit)."""

from __future__ import annotations

from sqlalchemy import (
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
)

NAME = "signals: per-request signals, alerts"

_metadata = MetaData()

_request_signals = Table(
    "request_signals",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("prompt", Text),
    Column("version", Text),
    Column("model", Text),
    Column("key_id", Text),
    Column("name", Text, nullable=False),
    Column("value", Float),
    Column("label", Text),
    Index("ix_request_signals_series", "prompt", "version", "name", "at"),
)

_alerts = Table(
    "alerts",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("rule", Text, nullable=False),
    Column("prompt", Text),
    Column("version", Text),
    Column("signal", Text, nullable=False),
    Column("value", Float),
    Column("threshold", Float),
    Column("message", Text, nullable=False),
    Column("delivered", Text, nullable=False),
    Index("ix_alerts_at", "at"),
)


def apply(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
