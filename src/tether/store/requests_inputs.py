"""The logged inputs of one prompt version, read back from the request log for input drift.

An input is the text of a request's last user turn: what the caller asked, without the
prompt's own system text, which is the same for every request of a version. A prompt or version
of None means the stored NULL, not "any". Blocking calls: run them off the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, select

from tether.store.dialect import utc, utc_bound
from tether.store.tables import requests

# The embedders read a few hundred tokens at most: longer texts only cost JSON and tokenizing.
MAX_CHARS = 2000


@dataclass(frozen=True)
class LoggedInput:
    at: datetime
    text: str


def logged_inputs(
    engine: Engine,
    *,
    prompt: str | None,
    version: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[LoggedInput]:
    """The input texts of the latest `limit` requests in [since, until), oldest first.
    Requests without a user turn's text are left out (so fewer may come back)."""
    if limit <= 0:
        return []
    c = requests.c
    where = _bounded(_pair(prompt, version), since, until)
    query = select(c.at, c.messages).where(*where).order_by(c.at.desc(), c.id.desc()).limit(limit)
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    found = ((utc(r.at), input_text(r.messages)) for r in reversed(rows))
    return [LoggedInput(at, text) for at, text in found if text]


def nth_latest_at(
    engine: Engine, *, prompt: str | None, version: str | None, until: datetime, n: int
) -> datetime | None:
    """When the n-th newest request before `until` arrived (None: fewer than n requests):
    where a window of the latest n requests begins."""
    c = requests.c
    where = _bounded(_pair(prompt, version), None, until)
    query = select(c.at).where(*where).order_by(c.at.desc(), c.id.desc()).offset(n - 1).limit(1)
    with engine.connect() as conn:
        at = conn.execute(query).scalar_one_or_none()
    return utc(at) if at is not None else None


def logged_versions(engine: Engine, since: datetime) -> list[tuple[str | None, str | None]]:
    """The (prompt, version) pairs with requests logged at or after `since`."""
    c = requests.c
    query = select(c.prompt, c.prompt_version).where(c.at >= utc_bound(since)).distinct()
    with engine.connect() as conn:
        return [(r.prompt, r.prompt_version) for r in conn.execute(query)]


def input_text(messages_json: str | None) -> str:
    """The last user turn's text of a logged `messages` column ("" when there is none).
    Content is a string or a list of parts; only the parts of type "text" count."""
    try:
        messages = json.loads(messages_json or "[]")
    except ValueError:
        return ""
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))[:MAX_CHARS].strip()
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _pair(prompt: str | None, version: str | None) -> list[ColumnElement[bool]]:
    c = requests.c
    return [
        c.prompt.is_(None) if prompt is None else c.prompt == prompt,
        c.prompt_version.is_(None) if version is None else c.prompt_version == version,
    ]


def _bounded(
    where: Sequence[ColumnElement[bool]], since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    c = requests.c
    out = list(where)
    start, end = utc_bound(since), utc_bound(until)
    if start is not None:
        out.append(c.at >= start)
    if end is not None:
        out.append(c.at < end)
    return out
