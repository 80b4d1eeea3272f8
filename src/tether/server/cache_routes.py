"""The admin API for the response cache: what it holds and saves, and dropping entries.
Admins only (see tether.server.auth), like the rest of /admin.

GET  /admin/cache/stats?since=7d&prompt=P   the backend's entries and the request log's numbers
POST /admin/cache/invalidate                {prompt?, version?, tag?, key_id?, model?,
                                             older_than_s?, all?} -> {"dropped": n}

They act on this gateway's own cache: with Redis every replica follows an invalidation at once;
with the local backend this is the only replica.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tether.cache.backends.base import Selector
from tether.errors import InvalidRequest
from tether.server.api_docs import body_doc
from tether.server.auth import AdminAuth
from tether.server.bodies import read_json
from tether.server.gateway import Gateway
from tether.server.keys import parse_duration
from tether.server.openai_routes import JSON
from tether.store.cache_stats import cache_summary
from tether.store.offload import in_thread

router = APIRouter(prefix="/admin/cache")
LOG = "request log"
DEFAULT_SINCE = timedelta(days=7)
_TEXT_FIELDS = ("prompt", "version", "tag", "key_id", "model")
_FIELDS = frozenset({*_TEXT_FIELDS, "older_than_s", "all"})
_FIX = "send a JSON object with any of: " + ", ".join(sorted(_FIELDS))


class InvalidateCacheBody(BaseModel):
    """Every field given must match; none given needs `all: true`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(default=None, description="entries of this prompt")
    version: str | None = Field(default=None, description="of this prompt version")
    tag: str | None = Field(default=None, description="carrying this tag (a prompt's cache.tags)")
    key_id: str | None = Field(default=None, description="filed for this API key")
    model: str | None = Field(default=None, description="answered for this model name")
    older_than_s: float | None = Field(
        default=None, gt=0, description="filed more than this many seconds ago"
    )
    all: bool = Field(default=False, description="drop every entry (no other field)")


def _admin(request: Request) -> Gateway:
    """The gateway, once the request has passed the admin checks (see `AdminAuth.require`)."""
    auth: AdminAuth = request.app.state.auth
    auth.require(request)
    gateway: Gateway = request.app.state.gateway
    return gateway


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


@router.get("/stats")
async def cache_stats(
    request: Request, since: str | None = None, prompt: str | None = None
) -> Response:
    """The backend's live entries (total, per prompt, size) and, from the request log since
    `since` (7d, 24h or an ISO time; default 7 days), lookups, hits, savings and vetoes."""
    gateway = _admin(request)
    start = _since(since)
    cache = gateway.runtime.cache
    entries = await cache.stats()  # opens the backend off the event loop the first time
    engine = gateway.engine
    summary = await in_thread(lambda: cache_summary(engine, start, prompt), what=LOG)
    backend = {"name": (await cache.opened()).name, **asdict(entries)}
    if prompt is not None:  # the size stays the whole cache's
        count = entries.by_prompt.get(prompt, 0)
        backend.update(entries=count, by_prompt={prompt: count} if count else {})
    return _json({"backend": backend, "summary": summary.to_json()})


@router.post("/invalidate", openapi_extra=body_doc(InvalidateCacheBody))
async def invalidate_cache(request: Request) -> Response:
    gateway = _admin(request)
    body = await read_json(request, gateway.settings.server.max_body_bytes)
    selector = _selector(body)
    dropped = await gateway.runtime.cache.invalidate(selector)
    return _json({"dropped": dropped, "selector": selector.describe()})


def _selector(body: dict[str, Any]) -> Selector:
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field `{unknown[0]}`", param=unknown[0], fix=_FIX)
    text: dict[str, str | None] = {}
    for field in _TEXT_FIELDS:
        value = body.get(field)
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidRequest(f"`{field}` must be a non-empty string", param=field, fix=_FIX)
        text[field] = value
    age = body.get("older_than_s")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int | float) or age <= 0):
        raise InvalidRequest(
            "`older_than_s` must be a number of seconds above 0", param="older_than_s", fix=_FIX
        )
    everything = body.get("all", False)
    if not isinstance(everything, bool):
        raise InvalidRequest("`all` must be true or false", param="all", fix=_FIX)
    key = text["key_id"]
    selector = Selector(
        prompt=text["prompt"],
        version=text["version"],
        tag=text["tag"],
        scope=f"key:{key}" if key is not None else None,
        model=text["model"],
        older_than_s=float(age) if age is not None else None,
    )
    if selector == Selector() and not everything:
        raise InvalidRequest(
            "no selector: say which entries to drop",
            param="all",
            fix="give prompt, version, tag, key_id, model or older_than_s, "
            "or `all: true` to drop every entry",
        )
    if everything and selector != Selector():
        raise InvalidRequest(
            f"`all: true` drops every entry, but selectors were given too ({selector.describe()})",
            param="all",
            fix="leave out `all` to drop only what the selectors match",
        )
    return selector


def _since(text: str | None) -> datetime:
    now = datetime.now(UTC)
    if text is None:
        return now - DEFAULT_SINCE
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(
            f"`since`: {text!r} is not an age (7d, 24h) or an ISO time",
            param="since",
            fix="e.g. ?since=24h or ?since=2026-11-30T00:00Z",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
