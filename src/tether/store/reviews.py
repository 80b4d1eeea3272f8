"""People's reviews of logged requests and the queue of requests waiting for one.

Evaluation runs queue requests (failed evaluations first, then a sample); a review takes a
request out of the queue. Reviewed triplets (prompt, answer, verdict) are what fine-tuning
exports read. Blocking calls: run them off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Engine, and_, case, delete, exists, func, insert, select

from tether.errors import TetherError
from tether.store.dialect import insert_ignoring_duplicates, utc
from tether.store.evaluations import (
    EvaluationRow,
    LoggedRequest,
    evaluations_of,
    load_requests,
    logged_request,
)
from tether.store.tables import feedback, requests, review_queue, reviews

Verdict = Literal["good", "bad", "needs-fix"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
FAILED_PREFIX = "failed"  # queue reasons that start with it are shown first


@dataclass(frozen=True)
class FeedbackNote:
    at: datetime
    score: float | None
    label: str | None
    comment: str | None


@dataclass(frozen=True)
class QueuedRequest:
    request: LoggedRequest
    reason: str
    sampled_at: datetime
    evaluations: list[EvaluationRow]
    feedback: list[FeedbackNote]


@dataclass(frozen=True)
class ReviewRow:
    request_id: str
    reviewer: str
    verdict: str
    corrected_output: str | None
    note: str | None
    at: datetime


@dataclass(frozen=True)
class ReviewedRequest:
    request: LoggedRequest
    review: ReviewRow  # the latest review of the request


def enqueue(engine: Engine, reasons: Sequence[tuple[str, str]]) -> int:
    """Queue (request id, reason) pairs; requests already queued or reviewed are left as they
    are. Returns how many were queued now."""
    if not reasons:
        return 0
    ids = [i for i, _ in reasons]
    with engine.begin() as conn:
        known = set(
            conn.execute(
                select(review_queue.c.request_id).where(review_queue.c.request_id.in_(ids))
            ).scalars()
        )
        known |= set(
            conn.execute(select(reviews.c.request_id).where(reviews.c.request_id.in_(ids)))
            .scalars()
            .all()
        )
        now = datetime.now(UTC)
        fresh = {i: r for i, r in reasons if i not in known}
        if fresh:
            statement = insert_ignoring_duplicates(review_queue, conn, ["request_id"])
            conn.execute(
                statement,
                [{"request_id": i, "sampled_at": now, "reason": r} for i, r in fresh.items()],
            )
    return len(fresh)


def queue_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(review_queue)).scalar_one())


def queued(engine: Engine, *, limit: int = 50, prompt: str | None = None) -> list[QueuedRequest]:
    """The queue's first `limit` requests: failed evaluations first, then oldest first."""
    failed_first = case((review_queue.c.reason.like(f"{FAILED_PREFIX}%"), 0), else_=1)
    query = (
        select(review_queue.c.request_id, review_queue.c.reason, review_queue.c.sampled_at)
        .order_by(failed_first, review_queue.c.sampled_at, review_queue.c.request_id)
        .limit(limit)
    )
    if prompt is not None:
        query = query.join(requests, requests.c.id == review_queue.c.request_id).where(
            requests.c.prompt == prompt
        )
    with engine.connect() as conn:
        entries = conn.execute(query).all()
    ids = [e.request_id for e in entries]
    loaded = load_requests(engine, ids)
    evaluated = evaluations_of(engine, ids)
    notes = _feedback(engine, ids)
    return [
        QueuedRequest(
            loaded[e.request_id],
            e.reason,
            utc(e.sampled_at),
            evaluated[e.request_id],
            notes.get(e.request_id, []),
        )
        for e in entries
        if e.request_id in loaded  # a request gone from the log (retention) is skipped
    ]


def _feedback(engine: Engine, ids: Sequence[str]) -> dict[str, list[FeedbackNote]]:
    found: dict[str, list[FeedbackNote]] = {}
    if not ids:
        return found
    with engine.connect() as conn:
        rows = conn.execute(
            select(feedback).where(feedback.c.request_id.in_(ids)).order_by(feedback.c.id)
        )
        for f in rows:
            note = FeedbackNote(utc(f.at), f.score, f.label, f.comment)
            found.setdefault(f.request_id, []).append(note)
    return found


def add_review(
    engine: Engine,
    request_id: str,
    *,
    reviewer: str,
    verdict: str,
    corrected_output: str | None = None,
    note: str | None = None,
) -> ReviewRow:
    """Store a review and take the request out of the queue, in one transaction."""
    if verdict not in VERDICTS:
        raise TetherError(
            f"review verdict {verdict!r} is not one of {', '.join(VERDICTS)}",
            fix="choose good, bad or needs-fix",
        )
    row = ReviewRow(
        request_id, reviewer, verdict, corrected_output or None, note or None, datetime.now(UTC)
    )
    with engine.begin() as conn:
        if conn.execute(select(requests.c.id).where(requests.c.id == request_id)).first() is None:
            raise TetherError(
                f"no request with id {request_id!r} in the request log",
                fix="review a request listed in the review queue",
            )
        conn.execute(
            insert(reviews).values(
                request_id=row.request_id,
                reviewer=row.reviewer,
                verdict=row.verdict,
                corrected_output=row.corrected_output,
                note=row.note,
                at=row.at,
            )
        )
        conn.execute(delete(review_queue).where(review_queue.c.request_id == request_id))
    return row


def reviewed(
    engine: Engine, *, prompt: str | None = None, verdicts: Sequence[str] = VERDICTS
) -> list[ReviewedRequest]:
    """Each reviewed request whose latest review has one of `verdicts`, oldest request first."""
    later = reviews.alias("later")
    newer_exists = exists().where(
        and_(
            later.c.request_id == reviews.c.request_id,
            (later.c.at > reviews.c.at)
            | (and_(later.c.at == reviews.c.at, later.c.id > reviews.c.id)),
        )
    )
    query = (
        select(
            requests,
            reviews.c.reviewer,
            reviews.c.verdict,
            reviews.c.corrected_output,
            reviews.c.note,
            reviews.c.at.label("reviewed_at"),
        )
        .join(reviews, reviews.c.request_id == requests.c.id)
        .where(~newer_exists, reviews.c.verdict.in_(list(verdicts)))
        .order_by(requests.c.at, requests.c.id)
    )
    if prompt is not None:
        query = query.where(requests.c.prompt == prompt)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        ReviewedRequest(
            logged_request(r),
            ReviewRow(r.id, r.reviewer, r.verdict, r.corrected_output, r.note, utc(r.reviewed_at)),
        )
        for r in rows
    ]
