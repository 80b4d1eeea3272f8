"""1: the prompt registry: versions, labels, label events (frozen: never edit)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAME = "prompt registry: versions, labels, label events"

_metadata = MetaData()

_prompt_versions = Table(
    "prompt_versions",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("version", String(100), nullable=False),
    Column("major", Integer, nullable=False),
    Column("minor", Integer, nullable=False),
    Column("patch", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("spec", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version", name="uq_prompt_version"),
)

_prompt_labels = Table(
    "prompt_labels",
    _metadata,
    Column("name", Text, primary_key=True),
    Column("label", Text, primary_key=True),
    Column("version", String(100), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(["name", "version"], ["prompt_versions.name", "prompt_versions.version"]),
)

_label_events = Table(
    "label_events",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("from_version", String(100)),
    Column("to_version", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("actor", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)


def apply(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
