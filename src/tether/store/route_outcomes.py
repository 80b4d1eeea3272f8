"""Logged outcomes for training a router: which model answered a request, and whether the
feedback on it says the answer passed.

A request's model is the one that answered it (`route.answered_by` in the log, which counts
fallbacks), else the logged model. Feedback passes when its `score` is at least `pass_score`,
or, without a score, when its `label` is one of PASS_LABELS (FAIL_LABELS fail); other feedback is
left out. The latest feedback on a request wins. The text is what the route stage reads: the
user messages of the logged prompt, one per line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from tether.store.tables import feedback, requests

PASS_LABELS = frozenset({"pass", "passed", "good", "correct", "yes", "thumbs_up"})
FAIL_LABELS = frozenset({"fail", "failed", "bad", "wrong", "incorrect", "no", "thumbs_down"})


@dataclass(frozen=True)
class LoggedOutcome:
    request_id: str
    model: str
    text: str
    passed: bool


def logged_outcomes(
    engine: Engine,
    models: Sequence[str],
    *,
    since: datetime | None = None,
    prompt: str | None = None,
    pass_score: float = 0.5,
    limit: int = 100_000,
) -> list[LoggedOutcome]:
    """Outcomes of logged requests answered by one of `models`, with judging feedback; newest
    requests first, at most `limit`. Blocking: call it from a thread in async code."""
    query = (
        select(
            requests.c.id,
            requests.c.model,
            requests.c.route,
            requests.c.messages,
            feedback.c.score,
            feedback.c.label,
        )
        .join(feedback, feedback.c.request_id == requests.c.id)
        .order_by(requests.c.at.desc(), requests.c.id, feedback.c.at, feedback.c.id)
    )
    if since is not None:
        query = query.where(requests.c.at >= since)
    if prompt is not None:
        query = query.where(requests.c.prompt == prompt)
    wanted = set(models)
    latest: dict[str, LoggedOutcome] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            model = _answered_by(row.route) or row.model
            passed = _verdict(row.score, row.label, pass_score)
            if model not in wanted or passed is None:
                continue
            if row.id not in latest and len(latest) >= limit:
                break
            latest[row.id] = LoggedOutcome(row.id, model, _user_text(row.messages), passed)
    return [o for o in latest.values() if o.text.strip()]


def _answered_by(route: str | None) -> str | None:
    if not route:
        return None
    try:
        data = json.loads(route)
    except json.JSONDecodeError:
        return None
    found = data.get("answered_by") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


def _verdict(score: float | None, label: str | None, pass_score: float) -> bool | None:
    if score is not None:
        return score >= pass_score
    if label is not None:
        lowered = label.strip().lower()
        if lowered in PASS_LABELS:
            return True
        if lowered in FAIL_LABELS:
            return False
    return None


def _user_text(messages: str) -> str:
    try:
        rows = json.loads(messages)
    except json.JSONDecodeError:
        return ""
    if not isinstance(rows, list):
        return ""
    # As RouteInput.text reads a request: its last user message.
    users = [m for m in rows if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""
