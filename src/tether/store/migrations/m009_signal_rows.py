"""9: one `request_signals` row per request (its signals as JSON), replacing one row per
signal: the signal worker's writes shrink tenfold. Stored signals are carried over
(frozen: never edit)."""

from __future__ import annotations

import json
from typing import Any

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
    insert,
    select,
)

NAME = "signals: one row per request"

_metadata = MetaData()

_old = Table(
    "request_signals_m7",
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
)

_new = Table(
    "request_signals",
    _metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", String(40), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("prompt", Text),
    Column("version", Text),
    Column("model", Text),
    Column("key_id", Text),
    Column("names", Text, nullable=False),
    Column("numbers", Text, nullable=False),
    Column("labels", Text),
    Index("ix_request_signals_window", "prompt", "version", "at"),
    Index("ix_request_signals_request", "request_id"),
    Index("ix_request_signals_at", "at"),  # retention deletes by age alone
)

_BATCH = 5000


def apply(conn: Connection) -> None:
    conn.exec_driver_sql("DROP INDEX ix_request_signals_series")
    conn.exec_driver_sql("ALTER TABLE request_signals RENAME TO request_signals_m7")
    if conn.dialect.name == "postgresql":
        # the new table's primary key and id sequence take these names
        conn.exec_driver_sql(
            "ALTER TABLE request_signals_m7 RENAME CONSTRAINT request_signals_pkey "
            "TO request_signals_m7_pkey"
        )
        conn.exec_driver_sql(
            "ALTER SEQUENCE request_signals_id_seq RENAME TO request_signals_m7_id_seq"
        )
    _new.create(conn)
    _carry_over(conn)
    conn.exec_driver_sql("DROP TABLE request_signals_m7")


def _carry_over(conn: Connection) -> None:
    """Each request's old rows (ordered by request) become its one new row."""
    c = _old.c
    query = select(_old).order_by(c.request_id, c.id)
    current: list[Any] = []
    batch: list[dict[str, Any]] = []
    for row in conn.execute(query):
        if current and row.request_id != current[0].request_id:
            batch.append(_merged(current))
            current = []
            if len(batch) >= _BATCH:
                conn.execute(insert(_new), batch)
                batch = []
        current.append(row)
    if current:
        batch.append(_merged(current))
    if batch:
        conn.execute(insert(_new), batch)


def _merged(rows: list[Any]) -> dict[str, Any]:
    first = rows[0]
    numbers = {r.name: r.value for r in rows if r.label is None}
    labels = {r.name: r.label for r in rows if r.label is not None}
    return {
        "request_id": first.request_id,
        "at": first.at,
        "prompt": first.prompt,
        "version": first.version,
        "model": first.model,
        "key_id": first.key_id,
        "names": _json(sorted({*numbers, *labels})),
        "numbers": _json(numbers),
        "labels": _json(labels) if labels else None,
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
