"""Graded samples in the database, the same on SQLite and PostgreSQL: a batch stored at once,
a prompt's latest read back newest first, calls without a prompt kept apart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tether.cache.grades import Grade, GradeStore
from tether.store import open_database
from tether.store.cache_grades import DatabaseGradeStore

T0 = 1_780_000_000.25


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    found = open_database(database_url)
    try:
        yield found
    finally:
        found.dispose()


def grade(prompt: str | None, at: float, *, right: bool = True, score: float = 0.9) -> Grade:
    return Grade(
        prompt=prompt,
        score=score,
        similarity=0.95,
        right=right,
        source="miss",
        request_id=f"req_{at}",
        created_at=at,
    )


def test_recent_returns_a_prompts_latest_grades_newest_first(engine: sa.Engine) -> None:
    store: GradeStore = DatabaseGradeStore(engine)
    store.add([grade("triage", T0 + i, right=i % 2 == 0, score=i / 10) for i in range(5)])
    store.add([grade("other", T0 + 10), grade(None, T0 + 11, right=False)])

    latest = store.recent("triage", 3)
    assert [g.created_at for g in latest] == [T0 + 4, T0 + 3, T0 + 2]
    assert [g.right for g in latest] == [True, False, True]
    assert latest[0] == grade("triage", T0 + 4, right=True, score=0.4)  # every field round trips

    assert [g.created_at for g in store.recent("triage", 100)] == [T0 + i for i in range(4, -1, -1)]
    assert store.recent("triage", 0) == []
    assert store.recent("missing", 5) == []


def test_none_means_calls_without_a_prompt(engine: sa.Engine) -> None:
    store = DatabaseGradeStore(engine)
    store.add([grade(None, T0), grade("triage", T0 + 1), grade(None, T0 + 2, right=False)])
    found = store.recent(None, 10)
    assert [(g.prompt, g.created_at, g.right) for g in found] == [
        (None, T0 + 2, False),
        (None, T0, True),
    ]


def test_an_empty_batch_stores_nothing(engine: sa.Engine) -> None:
    store = DatabaseGradeStore(engine)
    store.add([])
    assert store.recent(None, 10) == []


def test_prompt_text_is_stored_as_given(engine: sa.Engine) -> None:
    store = DatabaseGradeStore(engine)
    name = "a\x00b <i>' %_"
    store.add([grade(name, T0)])
    assert [g.prompt for g in store.recent(name, 1)] == [name]
