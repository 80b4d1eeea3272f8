"""Graded samples in the database beside the request log (cache/grades.py's `GradeStore`).

Blocking calls: the cache runs them in a thread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from tether.cache.grades import Grade, GradeSource
from tether.store.dialect import utc
from tether.store.tables import cache_grades


class DatabaseGradeStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, grades: Sequence[Grade]) -> None:
        if not grades:
            return
        rows = [
            {
                "prompt": g.prompt,
                "score": g.score,
                "similarity": g.similarity,
                "right": g.right,
                "source": g.source,
                "request_id": g.request_id,
                "created_at": datetime.fromtimestamp(g.created_at, UTC),
            }
            for g in grades
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(cache_grades), rows)

    def recent(self, prompt: str | None, limit: int) -> list[Grade]:
        """The prompt's latest grades (None: calls without a registered prompt), newest first."""
        if limit <= 0:
            return []
        c = cache_grades.c
        which = c.prompt.is_(None) if prompt is None else c.prompt == prompt
        query = (
            select(cache_grades)
            .where(which)
            .order_by(c.created_at.desc(), c.id.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [_grade(row) for row in conn.execute(query)]


def _grade(row: Any) -> Grade:
    source: GradeSource = row.source
    return Grade(
        prompt=row.prompt,
        score=float(row.score),
        similarity=float(row.similarity),
        right=bool(row.right),
        source=source,
        request_id=row.request_id,
        created_at=utc(row.created_at).timestamp(),
    )
