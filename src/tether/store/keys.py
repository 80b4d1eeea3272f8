"""Queries on the api_keys table, and the money each key spent from the request log.

Plain functions of an Engine; rows come back as stored (models and prompts as JSON text,
timestamps without their zone on SQLite), for `tether.server.keys` to turn into keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, func, insert, select, update

from tether.store.tables import api_keys, requests


def all_keys(engine: Engine) -> Sequence[Row[Any]]:
    """Every key ever issued, revoked and expired ones included, in no particular order."""
    with engine.connect() as conn:
        return conn.execute(select(api_keys)).all()


def keys_oldest_first(engine: Engine) -> Sequence[Row[Any]]:
    with engine.connect() as conn:
        return conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()


def key_row(engine: Engine, key_id: str) -> Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()


def add_key(engine: Engine, values: Mapping[str, Any]) -> None:
    """Store a new key: `values` holds every column of api_keys."""
    with engine.begin() as conn:
        conn.execute(insert(api_keys).values(**values))


def revoke_key(engine: Engine, key_id: str, at: datetime) -> None:
    """Mark a key revoked at `at`; a key already revoked keeps its first time, and an unknown
    id changes nothing."""
    with engine.begin() as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )


def spent_by_key(engine: Engine) -> dict[str, float]:
    """Money spent per key id, from the request log (requests made without a key left out)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(requests.c.key_id, func.sum(requests.c.cost_usd))
            .where(requests.c.key_id.is_not(None))
            .group_by(requests.c.key_id)
        )
        return {key_id: float(total or 0.0) for key_id, total in rows}
