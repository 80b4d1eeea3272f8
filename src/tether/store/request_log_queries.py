"""Read queries over the request log: one filtered page of requests, one request with its
key's name and its feedback.

Plain functions of an Engine (callers on the event loop run them in a thread); rows come back
as stored, for the dashboard to shape for display.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Engine, Row, and_, func, or_, select, true

from tether.store.tables import api_keys, feedback, requests


class RequestCriteria(Protocol):
    """Which requests to list; an empty value (or None) does not narrow the list."""

    @property
    def model(self) -> str: ...
    @property
    def prompt(self) -> str: ...  # a prompt name, or name@version
    @property
    def status(self) -> str: ...  # "ok" (< 400) or "error"
    @property
    def valid(self) -> str: ...  # "yes", "no" or "none" (no contract)
    @property
    def key(self) -> str: ...  # a key id
    @property
    def q(self) -> str: ...  # text in the rendered prompt or the response
    @property
    def date_from(self) -> date | None: ...
    @property
    def date_to(self) -> date | None: ...  # included


@dataclass(frozen=True)
class FoundRequests:
    rows: Sequence[Row[Any]]
    total: int  # matching requests, on every page
    page: int  # the page shown: the one asked for, or the last when it is past the end


@dataclass(frozen=True)
class StoredRequest:
    request: Row[Any]  # every column of the request
    key_name: str | None
    feedback: Sequence[Row[Any]]  # oldest first


# What the list shows of each request: not the texts.
_LISTED: tuple[ColumnElement[Any], ...] = (
    requests.c.id, requests.c.at, requests.c.endpoint, requests.c.model, requests.c.prompt,
    requests.c.prompt_version, requests.c.status, requests.c.valid, requests.c.input_tokens,
    requests.c.output_tokens, requests.c.cost_usd, requests.c.latency_ms,
)  # fmt: skip


def _conditions(criteria: RequestCriteria) -> list[ColumnElement[bool]]:
    c = requests.c
    found: list[ColumnElement[bool]] = []
    if criteria.model:
        found.append(c.model == criteria.model)
    if criteria.prompt:
        name, at, version = criteria.prompt.partition("@")
        found.append(c.prompt == name)
        if at:
            found.append(c.prompt_version == version)
    if criteria.status == "ok":
        found.append(c.status < 400)
    elif criteria.status == "error":
        found.append(c.status >= 400)
    if criteria.valid == "yes":
        found.append(c.valid.is_(True))
    elif criteria.valid == "no":
        found.append(c.valid.is_(False))
    elif criteria.valid == "none":
        found.append(c.valid.is_(None))
    if criteria.key:
        found.append(c.key_id == criteria.key)
    if criteria.q:
        # Messages are stored as JSON: also look for the text as JSON writes it (quotes, \n).
        forms = {criteria.q, json.dumps(criteria.q, ensure_ascii=False)[1:-1]}
        found.append(
            or_(
                *(c.messages.icontains(f, autoescape=True) for f in forms),
                *(c.response.icontains(f, autoescape=True) for f in forms),
            )
        )
    if criteria.date_from is not None:
        found.append(c.at >= datetime.combine(criteria.date_from, time(), UTC))
    if criteria.date_to is not None:
        found.append(c.at < datetime.combine(criteria.date_to + timedelta(days=1), time(), UTC))
    return found


def find_requests(
    engine: Engine, criteria: RequestCriteria, page: int, page_size: int
) -> FoundRequests:
    """One page of the requests that `criteria` select, newest first."""
    c = requests.c
    where = and_(true(), *_conditions(criteria))
    with engine.connect() as conn:
        total = int(
            conn.execute(select(func.count()).select_from(requests).where(where)).scalar_one()
        )
        last_page = max(1, -(-total // page_size))
        page = min(page, last_page)
        rows = conn.execute(
            select(*_LISTED)
            .where(where)
            .order_by(c.at.desc(), c.id.desc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        ).all()
    return FoundRequests(rows, total, page)


def stored_request(engine: Engine, request_id: str) -> StoredRequest | None:
    """One logged request, the name of the key that made it and the feedback on it."""
    with engine.connect() as conn:
        r = conn.execute(select(requests).where(requests.c.id == request_id)).first()
        if r is None:
            return None
        key_name = None
        if r.key_id is not None:
            key_name = conn.execute(
                select(api_keys.c.name).where(api_keys.c.id == r.key_id)
            ).scalar()
        notes = conn.execute(
            select(feedback).where(feedback.c.request_id == request_id).order_by(feedback.c.id)
        ).all()
    return StoredRequest(r, key_name, notes)
