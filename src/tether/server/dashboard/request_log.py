"""The request log pages' data: one filtered page of requests, one request in detail.

Plain functions of an Engine, run in a worker thread by the routes. The queries live in
`tether.store.request_log_queries`; this module turns their rows into dataclasses of
display-ready values. JSON columns are parsed defensively (a row that does not parse is shown
as stored, never turned into an error page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from tether.server.dashboard.filters import RequestFilters
from tether.store.dialect import utc
from tether.store.request_log_queries import find_requests, stored_request

PAGE_SIZE = 50


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


def list_requests(engine: Engine, filters: RequestFilters) -> RequestPage:
    """The page of requests that `filters` select, newest first."""
    found = find_requests(engine, filters, filters.page, PAGE_SIZE)
    return RequestPage([_row(r) for r in found.rows], found.total, found.page)


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
class ShownCache:
    kind: str  # miss, exact, semantic, bypass or skip (as stored)
    served: bool  # the answer came from the cache
    reason: str | None
    similarity: float | None
    score: float | None
    threshold: float | None
    vetoed_by: str | None
    entry: str | None
    stored: bool
    verified: bool
    saved_usd: float | None  # None unless the cache served the answer
    saved_s: float | None


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
    cache: ShownCache | None = None


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


def _cache(kind: str | None, saved_usd: Any, saved_s: Any, text: str | None) -> ShownCache | None:
    if kind is None:
        return None  # the cache was not consulted
    data = _loads(text)
    if not isinstance(data, dict):
        data = {}
    return ShownCache(
        kind=kind,
        served=saved_usd is not None,
        reason=_text(data.get("reason")),
        similarity=_number(data.get("similarity")),
        score=_number(data.get("score")),
        threshold=_number(data.get("threshold")),
        vetoed_by=_text(data.get("vetoed_by")),
        entry=_text(data.get("entry")),
        stored=data.get("stored") is True,
        verified=data.get("verified") is True,
        saved_usd=_number(saved_usd),
        saved_s=_number(saved_s),
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
    found = stored_request(engine, request_id)
    if found is None:
        return None
    r = found.request
    messages, messages_raw = _messages(r.messages)
    return RequestDetail(
        row=_row(r),
        key_id=r.key_id,
        key_name=found.key_name,
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
        feedback=[
            FeedbackRow(utc(f.at), f.score, f.label, f.comment, f.key_id) for f in found.feedback
        ],
        route=_route(r.route),
        cache=_cache(r.cache, r.cache_saved_usd, r.cache_saved_s, r.cache_detail),
    )
