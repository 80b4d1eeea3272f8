"""Read queries over the request log: one filtered page of requests, one request in detail.

Plain functions of an Engine, run in a worker thread by the routes. They return dataclasses of
display-ready values; JSON columns are parsed defensively (a row that does not parse is shown
as stored, never turned into an error page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, or_, select, true

from tether.server.dashboard.filters import RequestFilters
from tether.store.tables import api_keys, feedback, requests

PAGE_SIZE = 50


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


@dataclass(frozen=True)
class RequestRow:
    id: str
    at: datetime
    endpoint: str
    model: str | None
    prompt: str | None
    prompt_version: str | None
    status: int
    valid: bool | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float


@dataclass(frozen=True)
class RequestPage:
    rows: list[RequestRow]
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _conditions(filters: RequestFilters) -> list[ColumnElement[bool]]:
    c = requests.c
    found: list[ColumnElement[bool]] = []
    if filters.model:
        found.append(c.model == filters.model)
    if filters.prompt:
        name, at, version = filters.prompt.partition("@")
        found.append(c.prompt == name)
        if at:
            found.append(c.prompt_version == version)
    if filters.status == "ok":
        found.append(c.status < 400)
    elif filters.status == "error":
        found.append(c.status >= 400)
    if filters.valid == "yes":
        found.append(c.valid.is_(True))
    elif filters.valid == "no":
        found.append(c.valid.is_(False))
    elif filters.valid == "none":
        found.append(c.valid.is_(None))
    if filters.key:
        found.append(c.key_id == filters.key)
    if filters.q:
        # Messages are stored as JSON: also look for the text as JSON writes it (quotes, \n).
        forms = {filters.q, json.dumps(filters.q, ensure_ascii=False)[1:-1]}
        found.append(
            or_(
                *(c.messages.icontains(f, autoescape=True) for f in forms),
                *(c.response.icontains(f, autoescape=True) for f in forms),
            )
        )
    if filters.date_from is not None:
        found.append(c.at >= datetime.combine(filters.date_from, time(), UTC))
    if filters.date_to is not None:
        found.append(c.at < datetime.combine(filters.date_to + timedelta(days=1), time(), UTC))
    return found


def list_requests(engine: Engine, filters: RequestFilters) -> RequestPage:
    """The page of requests that `filters` select, newest first."""
    c = requests.c
    where = and_(true(), *_conditions(filters))
    columns = (c.id, c.at, c.endpoint, c.model, c.prompt, c.prompt_version, c.status, c.valid,
               c.input_tokens, c.output_tokens, c.cost_usd, c.latency_ms)  # fmt: skip
    with engine.connect() as conn:
        total = int(
            conn.execute(select(func.count()).select_from(requests).where(where)).scalar_one()
        )
        last_page = max(1, -(-total // PAGE_SIZE))
        page = min(filters.page, last_page)
        rows = conn.execute(
            select(*columns)
            .where(where)
            .order_by(c.at.desc(), c.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
    return RequestPage([_row(r) for r in rows], total, page)


def _row(r: Any) -> RequestRow:
    return RequestRow(
        id=r.id,
        at=utc(r.at),
        endpoint=r.endpoint,
        model=r.model,
        prompt=r.prompt,
        prompt_version=r.prompt_version,
        status=r.status,
        valid=r.valid,
        input_tokens=r.input_tokens,
        output_tokens=r.output_tokens,
        cost_usd=r.cost_usd,
        latency_ms=r.latency_ms,
    )


# -- one request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ShownAttempt:
    number: int
    raw: str
    errors: list[str]
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    latency_ms: float | None
    finish_reason: str | None
    model: str | None = None  # the configured model that made it (a fallback changes it)


@dataclass(frozen=True)
class FeedbackRow:
    at: datetime
    score: float | None
    label: str | None
    comment: str | None
    key_id: str | None


@dataclass(frozen=True)
class ShownRoute:
    policy: str | None  # None: no router; the request named its model
    chosen: str | None
    reason: str | None
    score: float | None
    answered_by: str | None
    by_rule: bool
    skipped: list[str]  # fallbacks taken: each model passed over, and why


@dataclass(frozen=True)
class RequestDetail:
    row: RequestRow
    key_id: str | None
    key_name: str | None
    provider: str | None
    upstream_model: str | None
    error: str | None
    stream: bool
    contract: str | None
    messages: list[ShownMessage]
    messages_raw: str | None  # the stored text, when it is not the expected JSON
    response: str | None
    output: str | None  # pretty JSON
    attempts: list[ShownAttempt]
    feedback: list[FeedbackRow]
    route: ShownRoute | None = None


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _messages(text: str) -> tuple[list[ShownMessage], str | None]:
    data = _loads(text)
    if not isinstance(data, list) or not all(isinstance(m, dict) for m in data):
        return [], text
    return [ShownMessage(str(m.get("role", "")), str(m.get("content", ""))) for m in data], None


def _pretty(text: str | None) -> str | None:
    if text is None:
        return None
    data = _loads(text)
    if data is None and text.strip() != "null":
        return text
    return json.dumps(data, indent=2, ensure_ascii=False)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _route(text: str | None) -> ShownRoute | None:
    data = _loads(text)
    if not isinstance(data, dict):
        return None
    skipped = data.get("skipped")
    score = _number(data.get("score"))
    return ShownRoute(
        policy=_text(data.get("policy")),
        chosen=_text(data.get("model")),
        reason=_text(data.get("reason")),
        score=score,
        answered_by=_text(data.get("answered_by")),
        by_rule=data.get("answered_by_rule") is True,
        skipped=[str(s) for s in skipped] if isinstance(skipped, list) else [],
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _attempts(text: str | None) -> list[ShownAttempt]:
    data = _loads(text)
    if not isinstance(data, list):
        return []
    shown = []
    for number, item in enumerate((a for a in data if isinstance(a, dict)), start=1):
        errors = item.get("errors")
        tokens_in, tokens_out = (
            _number(item.get("input_tokens")),
            _number(item.get("output_tokens")),
        )
        finish = item.get("finish_reason")
        shown.append(
            ShownAttempt(
                number=number,
                raw=str(item.get("raw", "")),
                errors=[str(e) for e in errors] if isinstance(errors, list) else [],
                input_tokens=int(tokens_in) if tokens_in is not None else None,
                output_tokens=int(tokens_out) if tokens_out is not None else None,
                cost_usd=_number(item.get("cost_usd")),
                latency_ms=_number(item.get("latency_ms")),
                finish_reason=str(finish) if finish is not None else None,
                model=_text(item.get("model")) or None,
            )
        )
    return shown


def request_detail(engine: Engine, request_id: str) -> RequestDetail | None:
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
    messages, messages_raw = _messages(r.messages)
    return RequestDetail(
        row=_row(r),
        key_id=r.key_id,
        key_name=key_name,
        provider=r.provider,
        upstream_model=r.upstream_model,
        error=r.error,
        stream=r.stream,
        contract=r.contract,
        messages=messages,
        messages_raw=messages_raw,
        response=r.response,
        output=_pretty(r.output),
        attempts=_attempts(r.attempts),
        feedback=[FeedbackRow(utc(f.at), f.score, f.label, f.comment, f.key_id) for f in notes],
        route=_route(r.route),
    )
