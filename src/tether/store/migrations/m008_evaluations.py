"""8: evaluations of logged requests, people's reviews of them, and the review queue (frozen:
never edit)."""

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

NAME = "evaluations: evaluations, reviews, review queue"

_metadata = MetaData()

_evaluations = Table(
    "evaluations",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", String(40), nullable=False),
    Column("evaluator", Text, nullable=False),
    Column("score", Float),
    Column("passed", Boolean),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_evaluations_request", "request_id"),
)

_reviews = Table(
    "reviews",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", String(40), nullable=False),
    Column("reviewer", Text, nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("corrected_output", Text),
    Column("note", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_reviews_request", "request_id"),
)

_review_queue = Table(
    "review_queue",
    _metadata,
    Column("request_id", String(40), primary_key=True),
    Column("sampled_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
)


def apply(conn: Connection) -> None:
    _metadata.create_all(conn, checkfirst=False)
