"""2: the gateway: virtual keys, request log, feedback (frozen: never edit)."""

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
)

NAME = "gateway: virtual keys, request log, feedback"

_metadata = MetaData()

_api_keys = Table(
    "api_keys",
    _metadata,
    Column("id", String(40), primary_key=True),
    Column("name", Text, nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("models", Text, nullable=False),
    Column("prompts", Text, nullable=False),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("budget_usd", Float),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)

_requests = Table(
    "requests",
    _metadata,
    Column("id", String(40), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("endpoint", String(60), nullable=False),
    Column("key_id", String(40)),
    Column("model", Text),
    Column("provider", Text),
    Column("upstream_model", Text),
    Column("prompt", Text),
    Column("prompt_version", String(100)),
    Column("status", Integer, nullable=False),
    Column("error", Text),
    Column("stream", Boolean, nullable=False),
    Column("messages", Text, nullable=False),
    Column("response", Text),
    Column("output", Text),
    Column("contract", Text),
    Column("valid", Boolean),
    Column("attempts", Text),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Index("ix_requests_at", "at"),
    Index("ix_requests_key", "key_id", "at"),
)

_feedback = Table(
    "feedback",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", String(40), nullable=False, index=True),
    Column("score", Float),
    Column("label", Text),
    Column("comment", Text),
    Column("key_id", String(40)),
    Column("at", DateTime(timezone=True), nullable=False),
)


def apply(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
