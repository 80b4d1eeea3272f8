"""Graded samples in the database beside the request log (cache/grades.py's `GradeStore`).

Besides the stored grades, feedback on a request the cache answered by meaning is a grade of
that hit: a score of at least 0.5 (thumbs up as 1, or a 1-5 scale's upper half once scaled by
the caller) says its answer was right, a lower one that it was wrong.

Blocking calls: the cache runs them in a thread."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, insert, select

from tether.cache.grades import Grade, GradeSource
from tether.store.dialect import utc
from tether.store.tables import cache_grades, feedback, requests


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
            stored = [_grade(row) for row in conn.execute(query)]
            rated = _feedback_grades(conn, prompt, limit)
        merged = sorted(stored + rated, key=lambda g: g.created_at, reverse=True)
        return merged[:limit]


RIGHT_AT = 0.5  # a feedback score at least this says the served answer was right


def _feedback_grades(conn: Connection, prompt: str | None, limit: int) -> list[Grade]:
    r, f = requests.c, feedback.c
    which = r.prompt.is_(None) if prompt is None else r.prompt == prompt
    query = (
        select(f.score, f.at, r.id, r.cache_detail)
        .join(requests, r.id == f.request_id)
        .where(which, r.cache == "semantic", f.score.is_not(None))
        .order_by(f.at.desc())
        .limit(limit)
    )
    out: list[Grade] = []
    for row in conn.execute(query):
        detail = orjson.loads(row.cache_detail or "{}")
        if detail.get("verified") or "score" not in detail:
            continue  # a re-checked hit was graded when it was re-checked
        out.append(
            Grade(
                prompt=prompt,
                score=float(detail["score"]),
                similarity=float(detail.get("similarity", 0.0)),
                right=float(row.score) >= RIGHT_AT,
                source="feedback",
                request_id=row.id,
                created_at=utc(row.at).timestamp(),
            )
        )
    return out


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
