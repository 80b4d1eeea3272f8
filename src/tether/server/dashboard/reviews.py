"""The review queue page: requests queued by evaluation runs (failed evaluations first, then a
sample), each with its rendered prompt, output, evaluations and feedback, and a form to record
a verdict (good, bad or needs-fix, an optional corrected output and note). A reviewed request
leaves the queue.

Admins only. The form's POST passes the dashboard's Origin check (as sign-in and sign-out do)
before anything else, and the session cookie is SameSite=Strict; every value is escaped by the
template. Queries run in a worker thread.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote

import anyio.to_thread
from fastapi import APIRouter, Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import RedirectResponse, Response

from tether.errors import TetherError
from tether.server.auth import check_origin
from tether.server.dashboard.access import admitted, denied, gateway_of
from tether.server.dashboard.pages import HEADERS, render
from tether.store.reviews import VERDICTS, QueuedRequest, add_review, queue_size, queued

router = APIRouter()

LIMIT = 50  # queued requests shown
MAX_FORM_BYTES = 256 * 1024  # a corrected output may be long
MAX_FILTER = 200
MAX_REVIEWER = 200
PAGE = "/dashboard/reviews"

T = TypeVar("T")


@dataclass(frozen=True)
class ReviewItem:
    queued: QueuedRequest
    output: str  # the validated output as pretty JSON, else the raw answer

    @property
    def id(self) -> str:
        return self.queued.request.id


def _shown_output(item: QueuedRequest) -> str:
    request = item.request
    if request.contract is not None and request.output is not None:
        return json.dumps(request.output, indent=2, ensure_ascii=False)
    return request.response or ""


def review_items(engine: Engine, prompt: str | None) -> tuple[list[ReviewItem], int]:
    items = [ReviewItem(q, _shown_output(q)) for q in queued(engine, limit=LIMIT, prompt=prompt)]
    return items, queue_size(engine)


async def _run(work: Callable[[], T]) -> T | Response:
    try:
        return await anyio.to_thread.run_sync(work)
    except SQLAlchemyError:
        return render("message.html", 503, title="Database unavailable",
                      text="The database did not answer; try again in a moment.")  # fmt: skip


def _filter(params: Mapping[str, str]) -> str | None:
    value = params.get("prompt", "").strip()[:MAX_FILTER]
    return value or None


@router.get("/reviews")
async def reviews_page(request: Request) -> Response:
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    prompt = _filter(request.query_params)
    found = await _run(partial(review_items, gateway.engine, prompt))
    if isinstance(found, Response):
        return found
    items, total = found
    return render("reviews.html", page="reviews", items=items, total=total, prompt=prompt,
                  verdicts=VERDICTS, limit=LIMIT)  # fmt: skip


async def _form(request: Request) -> dict[str, str] | None:
    """The posted fields (first value of each), or None when the body is too large."""
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True,
                      max_num_fields=10)  # fmt: skip
    return {name: values[0] for name, values in fields.items() if values}


def _bad_form(text: str, status: int = 400) -> Response:
    return render("message.html", status, title="Review not recorded", text=text)


def _record(engine: Engine, request_id: str, fields: dict[str, Any]) -> None:
    add_review(engine, request_id, **fields)


@router.post("/reviews/{request_id}")
async def record_review(request_id: str, request: Request) -> Response:
    check_origin(request)
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    form = await _form(request)
    if form is None:
        return _bad_form(f"The form is larger than {MAX_FORM_BYTES // 1024} KiB.", 413)
    verdict = form.get("verdict", "")
    if verdict not in VERDICTS:
        return _bad_form(f"Choose a verdict: {', '.join(VERDICTS)}.")
    corrected = form.get("corrected_output", "").strip() or None
    if verdict == "needs-fix" and corrected is None:
        return _bad_form("A needs-fix verdict needs the corrected output.")
    fields = {
        "reviewer": form.get("reviewer", "").strip()[:MAX_REVIEWER] or "dashboard",
        "verdict": verdict,
        "corrected_output": corrected if verdict == "needs-fix" else None,
        "note": form.get("note", "").strip() or None,
    }
    try:
        done = await _run(partial(_record, gateway.engine, request_id, fields))
    except TetherError as exc:
        return _bad_form(exc.message, 404)
    if isinstance(done, Response):
        return done
    prompt = _filter(form)
    target = PAGE + (f"?prompt={quote(prompt, safe='')}" if prompt else "")
    return RedirectResponse(target, 303, headers=HEADERS)
