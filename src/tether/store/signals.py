"""Per-request signals in the database: written in batches by the signal worker, read back as
one series per prompt version and signal name (drift, alerts, reports).

A prompt or version of None means the stored NULL (calls without a registered prompt), not
"any". Blocking calls: run them off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, insert, select

from tether.store.dialect import utc, utc_bound
from tether.store.tables import request_signals


@dataclass(frozen=True)
class SignalRow:
    """One signal of one request, as stored."""

    request_id: str
    at: datetime
    prompt: str | None
    version: str | None
    model: str | None
    key_id: str | None
    name: str
    value: float | None
    label: str | None


@dataclass(frozen=True)
class SignalPoint:
    at: datetime
    value: float | None
    label: str | None


_ROW_FIELDS = tuple(f.name for f in fields(SignalRow))


def add_signals(engine: Engine, rows: Sequence[SignalRow]) -> None:
    if not rows:
        return
    # A shallow dict per row: dataclasses.asdict deep-copies every value, which cost most
    # of the write.
    payload = [{name: getattr(row, name) for name in _ROW_FIELDS} for row in rows]
    with engine.begin() as conn:
        conn.execute(insert(request_signals), payload)


def signal_series(
    engine: Engine,
    *,
    prompt: str | None,
    version: str | None,
    name: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[SignalPoint]:
    """The latest `limit` points of one series in [since, until), oldest first."""
    if limit <= 0:
        return []
    c = request_signals.c
    where = [*_pair(prompt, version), c.name == name]
    start, end = utc_bound(since), utc_bound(until)
    if start is not None:
        where.append(c.at >= start)
    if end is not None:
        where.append(c.at < end)
    query = (
        select(c.at, c.value, c.label).where(*where).order_by(c.at.desc(), c.id.desc()).limit(limit)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    return [SignalPoint(at=utc(r.at), value=r.value, label=r.label) for r in reversed(rows)]


def signal_names(engine: Engine, prompt: str | None, version: str | None) -> list[str]:
    """The signals stored for one prompt version, sorted."""
    c = request_signals.c
    query = select(c.name).where(*_pair(prompt, version)).distinct().order_by(c.name)
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def prompt_versions(
    engine: Engine, since: datetime | None = None
) -> list[tuple[str | None, str | None]]:
    """The (prompt, version) pairs with signals at or after `since` (all when None)."""
    c = request_signals.c
    query = select(c.prompt, c.version).distinct()
    start = utc_bound(since)
    if start is not None:
        query = query.where(c.at >= start)
    with engine.connect() as conn:
        pairs = [(r.prompt, r.version) for r in conn.execute(query)]
    return sorted(pairs, key=lambda p: (p[0] is not None, p[0] or "", p[1] is not None, p[1] or ""))


def _pair(prompt: str | None, version: str | None) -> list[ColumnElement[bool]]:
    c = request_signals.c
    return [
        c.prompt.is_(None) if prompt is None else c.prompt == prompt,
        c.version.is_(None) if version is None else c.version == version,
    ]
