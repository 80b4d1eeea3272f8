"""Evaluations of logged requests: the logged request read back as a triplet's first two parts
(the rendered prompt and the answer), and the evaluator rows stored beside it.

Blocking calls: run them off the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, exists, insert, select

from tether.store.dialect import utc, utc_bound
from tether.store.tables import evaluations, requests

_ID_BATCH = 500  # ids per IN (...) list, well below every database's parameter limit


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the log holds it."""

    id: str
    at: datetime
    prompt: str | None
    prompt_version: str | None
    model: str | None
    status: int
    error: str | None
    messages: list[dict[str, Any]]  # the rendered prompt ([] when the stored JSON is odd)
    response: str | None  # the raw answer
    output: Any  # the validated output (parsed JSON), else the raw answer
    contract: str | None
    valid: bool | None

    @property
    def answered(self) -> bool:
        """Whether there is an output to judge: a successful call, or one whose answer failed
        its contract."""
        return self.response is not None and (self.status < 400 or self.valid is False)


@dataclass(frozen=True)
class EvaluationRow:
    request_id: str
    evaluator: str
    score: float | None
    passed: bool | None
    reason: str
    at: datetime


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def logged_request(row: Any) -> LoggedRequest:
    """A `requests` row (any select that has the columns below) as a LoggedRequest."""
    messages = _loads(row.messages)
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        messages = []
    output = _loads(row.output) if row.output is not None else row.response
    return LoggedRequest(
        id=row.id,
        at=utc(row.at),
        prompt=row.prompt,
        prompt_version=row.prompt_version,
        model=row.model,
        status=row.status,
        error=row.error,
        messages=messages,
        response=row.response,
        output=output,
        contract=row.contract,
        valid=row.valid,
    )


_COLUMNS = (
    requests.c.id,
    requests.c.at,
    requests.c.prompt,
    requests.c.prompt_version,
    requests.c.model,
    requests.c.status,
    requests.c.error,
    requests.c.messages,
    requests.c.response,
    requests.c.output,
    requests.c.contract,
    requests.c.valid,
)


def _batches(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), _ID_BATCH):
        yield ids[start : start + _ID_BATCH]


def load_requests(engine: Engine, ids: Sequence[str]) -> dict[str, LoggedRequest]:
    found: dict[str, LoggedRequest] = {}
    with engine.connect() as conn:
        for batch in _batches(ids):
            rows = conn.execute(select(*_COLUMNS).where(requests.c.id.in_(batch)))
            found.update((row.id, logged_request(row)) for row in rows)
    return found


def unevaluated(
    engine: Engine,
    prompt: str,
    *,
    since: datetime | None,
    limit: int,
    chosen: Callable[[str], bool],
) -> list[LoggedRequest]:
    """Up to `limit` of `prompt`'s logged requests with an answer and no evaluation yet, oldest
    first, among those `chosen(request_id)` keeps (the sample)."""
    query = (
        select(requests.c.id)
        .where(requests.c.prompt == prompt, requests.c.response.is_not(None))
        .where(~exists().where(evaluations.c.request_id == requests.c.id))
        .order_by(requests.c.at, requests.c.id)
    )
    bound = utc_bound(since)
    if bound is not None:
        query = query.where(requests.c.at >= bound)
    picked: list[str] = []
    with engine.connect() as conn:
        for request_id in conn.execute(query).scalars():
            if chosen(request_id):
                picked.append(request_id)
                if len(picked) >= limit:
                    break
    loaded = load_requests(engine, picked)
    return [loaded[i] for i in picked if i in loaded and loaded[i].answered]


def add_evaluations(engine: Engine, rows: Sequence[EvaluationRow]) -> None:
    if not rows:
        return
    with engine.begin() as conn:
        conn.execute(
            insert(evaluations),
            [
                {
                    "request_id": r.request_id,
                    "evaluator": r.evaluator,
                    "score": r.score,
                    "passed": r.passed,
                    "reason": r.reason,
                    "at": r.at,
                }
                for r in rows
            ],
        )


def evaluations_of(engine: Engine, ids: Sequence[str]) -> dict[str, list[EvaluationRow]]:
    """Each request's evaluations, in the order they were stored."""
    found: dict[str, list[EvaluationRow]] = {i: [] for i in ids}
    with engine.connect() as conn:
        for batch in _batches(ids):
            rows = conn.execute(
                select(evaluations)
                .where(evaluations.c.request_id.in_(batch))
                .order_by(evaluations.c.id)
            )
            for r in rows:
                found[r.request_id].append(
                    EvaluationRow(r.request_id, r.evaluator, r.score, r.passed, r.reason, utc(r.at))
                )
    return found
