"""Evaluations, reviews and the review queue on each database: logged requests read back, the
queue's order (failed evaluations first), a review taking a request out of the queue, and the
latest review per request for exports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import insert

from tether.errors import TetherError
from tether.store import open_database
from tether.store.evaluations import EvaluationRow, add_evaluations, evaluations_of, unevaluated
from tether.store.reviews import add_review, enqueue, queue_size, queued, reviewed
from tether.store.tables import feedback, requests

NOW = datetime.now(UTC).replace(microsecond=0)


def log_request(
    engine: sa.Engine,
    request_id: str,
    *,
    prompt: str | None = "ticket",
    user: str = "the app crashes",
    response: str | None = '{"queue": "tech"}',
    output: Any = None,
    at: datetime | None = None,
    status: int = 200,
    valid: bool | None = True,
) -> None:
    """One request-log row, as the record stage would write it."""
    messages = [{"role": "system", "content": "Route the ticket."},
                {"role": "user", "content": user}]  # fmt: skip
    if output is None and response is not None and valid is not None:
        output = json.loads(response)
    with engine.begin() as conn:
        conn.execute(
            insert(requests).values(
                id=request_id,
                at=at or NOW,
                endpoint="library.run",
                key_id=None,
                model="fake",
                provider="fake",
                upstream_model="fake",
                prompt=prompt,
                prompt_version="1.0.0",
                status=status,
                error=None,
                stream=False,
                messages=json.dumps(messages),
                response=response,
                output=None if output is None else json.dumps(output),
                contract="ticket" if valid is not None else None,
                valid=valid,
                attempts="[]",
                input_tokens=10,
                output_tokens=5,
                cost_usd=0.0,
                latency_ms=12.0,
            )
        )


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    found = open_database(database_url)
    yield found
    found.dispose()


def _row(request_id: str, evaluator: str, passed: bool | None) -> EvaluationRow:
    return EvaluationRow(request_id, evaluator, None, passed, "why", NOW)


def test_unevaluated_requests_of_a_prompt(engine: sa.Engine) -> None:
    for i in range(6):
        log_request(engine, f"req_{i}", at=NOW - timedelta(hours=6 - i))
    log_request(engine, "req_other", prompt="other")
    log_request(engine, "req_failed", response=None, status=502, valid=None)
    add_evaluations(engine, [_row("req_0", "in queue", True)])

    found = unevaluated(engine, "ticket", since=None, limit=100, chosen=lambda i: True)
    assert [r.id for r in found] == ["req_1", "req_2", "req_3", "req_4", "req_5"]  # oldest first
    first = found[0]
    assert first.output == {"queue": "tech"}
    assert first.messages[1] == {"role": "user", "content": "the app crashes"}
    assert first.at.tzinfo is not None

    since = unevaluated(engine, "ticket", since=NOW - timedelta(hours=3), limit=100,
                        chosen=lambda i: True)  # fmt: skip
    assert [r.id for r in since] == ["req_3", "req_4", "req_5"]
    picked = unevaluated(engine, "ticket", since=None, limit=2, chosen=lambda i: i != "req_1")
    assert [r.id for r in picked] == ["req_2", "req_3"]


def test_evaluations_read_back_per_request(engine: sa.Engine) -> None:
    grounded = EvaluationRow("b", "groundedness", 0.5, False, "1 of 2", NOW)
    add_evaluations(engine, [_row("a", "in queue", True), _row("a", "judge", False), grounded])
    found = evaluations_of(engine, ["a", "b", "c"])
    assert [(e.evaluator, e.passed) for e in found["a"]] == [("in queue", True), ("judge", False)]
    assert found["b"][0].score == 0.5
    assert found["c"] == []


def test_queue_puts_failures_first_and_a_review_takes_a_request_out(engine: sa.Engine) -> None:
    for name in ("sampled_1", "failed_1", "sampled_2"):
        log_request(engine, name, user=f"<b>{name}</b>")
    with engine.begin() as conn:
        conn.execute(insert(feedback).values(request_id="failed_1", score=0.0, label="wrong",
                                             comment="bad route", key_id=None, at=NOW))  # fmt: skip
    add_evaluations(engine, [_row("failed_1", "in queue", False)])
    assert enqueue(engine, [("sampled_1", "sampled")]) == 1
    assert enqueue(engine, [("failed_1", "failed: in queue"), ("sampled_2", "sampled")]) == 2
    assert enqueue(engine, [("sampled_1", "sampled")]) == 0  # already queued
    assert enqueue(engine, [("gone", "sampled")]) == 1
    assert queue_size(engine) == 4

    items = queued(engine)
    assert [q.request.id for q in items] == ["failed_1", "sampled_1", "sampled_2"]  # gone: skipped
    top = items[0]
    assert top.reason == "failed: in queue"
    assert [e.evaluator for e in top.evaluations] == ["in queue"]
    assert [(f.label, f.comment) for f in top.feedback] == [("wrong", "bad route")]
    assert queued(engine, prompt="other") == []

    add_review(engine, "failed_1", reviewer="ana", verdict="needs-fix",
               corrected_output='{"queue": "billing"}', note="billing issue")  # fmt: skip
    assert [q.request.id for q in queued(engine)] == ["sampled_1", "sampled_2"]
    assert enqueue(engine, [("failed_1", "failed: judge")]) == 0  # reviewed: not queued again


def test_review_errors(engine: sa.Engine) -> None:
    log_request(engine, "req_1")
    with pytest.raises(TetherError, match="verdict 'meh'"):
        add_review(engine, "req_1", reviewer="ana", verdict="meh")
    with pytest.raises(TetherError, match="no request with id 'nope'"):
        add_review(engine, "nope", reviewer="ana", verdict="good")


def test_reviewed_takes_each_requests_latest_review(engine: sa.Engine) -> None:
    log_request(engine, "req_1", at=NOW - timedelta(minutes=2))
    log_request(engine, "req_2", at=NOW - timedelta(minutes=1))
    log_request(engine, "req_3", prompt="other")
    add_review(engine, "req_1", reviewer="ana", verdict="bad")
    add_review(engine, "req_1", reviewer="bo", verdict="good")  # changed their mind
    add_review(engine, "req_2", reviewer="ana", verdict="bad")
    add_review(engine, "req_3", reviewer="ana", verdict="good")

    found = reviewed(engine, prompt="ticket")
    assert [(r.request.id, r.review.verdict, r.review.reviewer) for r in found] == [
        ("req_1", "good", "bo"),
        ("req_2", "bad", "ana"),
    ]
    assert [r.request.id for r in reviewed(engine, verdicts=["good"])] == ["req_1", "req_3"]
