"""Queries for user feedback on logged requests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, insert, select

from tether.store.tables import feedback, requests


@dataclass(frozen=True)
class Owner:
    key_id: str | None


def request_owner(engine: Engine, request_id: str) -> Owner | None:
    """Who made a logged request (None when no such request is stored)."""
    with engine.connect() as conn:
        found = conn.execute(select(requests.c.key_id).where(requests.c.id == request_id)).first()
    return None if found is None else Owner(found.key_id)


def add_feedback(
    engine: Engine,
    request_id: str,
    score: float | None,
    label: str | None,
    comment: str | None,
    key_id: str | None,
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(feedback).values(
                request_id=request_id,
                score=score,
                label=label,
                comment=comment,
                key_id=key_id,
                at=datetime.now(UTC),
            )
        )
