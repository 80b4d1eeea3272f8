"""Per-request signals in the database: one row per request (its numbers and its labels as
JSON objects, written in batches by the signal worker), read back as one series per prompt
version and signal name (drift, alerts, reports).

A row per request rather than per signal: the worker stores a dozen signals a request, and
ten rows cost the database (and the CPU the gateway shares with it) ten times the work of one.
Reading a series parses the rows of its prompt version and window; each row's `names` (a JSON
list) lets the reader skip rows without the signal before parsing them.

A prompt or version of None means the stored NULL (calls without a registered prompt), not
"any". Blocking calls: run them off the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Engine, Select, select

from tether.store.dialect import insert_rows, utc, utc_bound
from tether.store.tables import request_signals

_BATCH = 2000  # rows fetched at a time while reading a series
_COLUMNS = ("request_id", "at", "prompt", "version", "model", "key_id", "names", "numbers",
            "labels")  # fmt: skip


class Signal(NamedTuple):
    """One signal's value: a number, or a label (a categorical signal such as an enum field)."""

    name: str
    value: float | None = None
    label: str | None = None


class SignalSet(NamedTuple):
    """The signals of one request, as stored."""

    request_id: str
    at: datetime
    prompt: str | None
    version: str | None
    model: str | None
    key_id: str | None
    signals: Sequence[Signal]


class SignalRow(NamedTuple):
    """One signal of one request: what callers holding single verdicts (canaries, tests)
    store through `add_signal_rows`."""

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


def add_signals(engine: Engine, sets: Sequence[SignalSet]) -> None:
    if not sets:
        return
    with engine.begin() as conn:
        insert_rows(conn, request_signals, _COLUMNS, (_stored(s) for s in sets))


def add_signal_rows(engine: Engine, rows: Sequence[SignalRow]) -> None:
    """Store single signals, a request's rows gathered into its one stored row."""
    grouped: dict[str, tuple[SignalRow, list[Signal]]] = {}
    for row in rows:
        _, signals = grouped.setdefault(row.request_id, (row, []))
        signals.append(Signal(row.name, row.value, row.label))
    sets = [SignalSet(*first[:6], signals) for first, signals in grouped.values()]
    add_signals(engine, sets)


def _stored(item: SignalSet) -> tuple[Any, ...]:
    numbers: dict[str, float | None] = {}
    labels: dict[str, str] = {}
    for signal in item.signals:
        if signal.label is not None:
            labels[signal.name] = signal.label
        else:
            numbers[signal.name] = signal.value
    names = _json(sorted({*numbers, *labels}))
    return (*item[:6], names, _json(numbers), _json(labels) if labels else None)


def _json(values: Any) -> str:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


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
    query = _window(select(c.at, c.names, c.numbers, c.labels).where(*_pair(prompt, version)),
                    since, until).order_by(c.at.desc(), c.id.desc())  # fmt: skip
    points: list[SignalPoint] = []
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=_BATCH).execute(query):
            found = _value(row, name)
            if found is not None:
                points.append(SignalPoint(at=utc(row.at), value=found[0], label=found[1]))
                if len(points) == limit:
                    break
    points.reverse()
    return points


def signal_values(
    engine: Engine,
    name: str,
    *,
    prompt: str | None = None,
    version: str | None = None,
    since: datetime | None = None,
    request_ids: Sequence[str] | None = None,
) -> list[tuple[str, float]]:
    """(request id, value) of every stored number of one signal, oldest first, narrowed to a
    prompt (and version) when given, and to `request_ids` when given."""
    c = request_signals.c
    query = select(c.request_id, c.at, c.names, c.numbers, c.labels)
    if prompt is not None:
        query = query.where(c.prompt == prompt)
    if version is not None:
        query = query.where(c.version == version)
    if request_ids is not None:
        query = query.where(c.request_id.in_(request_ids))
    query = _window(query, since, None).order_by(c.at, c.id)
    out: list[tuple[str, float]] = []
    with engine.connect() as conn:
        for row in conn.execution_options(yield_per=_BATCH).execute(query):
            found = _value(row, name)
            if found is not None and found[0] is not None:
                out.append((row.request_id, found[0]))
    return out


def signal_names(engine: Engine, prompt: str | None, version: str | None) -> list[str]:
    """The signals stored for one prompt version, sorted."""
    c = request_signals.c
    query = select(c.names).where(*_pair(prompt, version)).distinct()
    with engine.connect() as conn:
        name_sets = list(conn.execute(query).scalars())
    return sorted({name for names in name_sets for name in json.loads(names)})


def prompt_versions(
    engine: Engine, since: datetime | None = None
) -> list[tuple[str | None, str | None]]:
    """The (prompt, version) pairs with signals at or after `since` (all when None)."""
    c = request_signals.c
    query = _window(select(c.prompt, c.version).distinct(), since, None)
    with engine.connect() as conn:
        pairs = [(r.prompt, r.version) for r in conn.execute(query)]
    return sorted(pairs, key=pair_order)


def pair_order(pair: tuple[str | None, str | None]) -> tuple[bool, str, bool, str]:
    """Sort key of (prompt, version) pairs: calls without a prompt (or version) first."""
    prompt, version = pair
    return prompt is not None, prompt or "", version is not None, version or ""


def _value(row: Any, name: str) -> tuple[float | None, str | None] | None:
    """A stored row's (value, label) of one signal; None when the row lacks it."""
    if _json(name) not in row.names:  # the name's own JSON is in the list's: skip cheaply
        return None
    labels = json.loads(row.labels) if row.labels else {}
    if name in labels:
        return None, labels[name]
    numbers = json.loads(row.numbers)
    return (numbers[name], None) if name in numbers else None


def _window(query: Select[Any], since: datetime | None, until: datetime | None) -> Select[Any]:
    c = request_signals.c
    start, end = utc_bound(since), utc_bound(until)
    if start is not None:
        query = query.where(c.at >= start)
    if end is not None:
        query = query.where(c.at < end)
    return query


def _pair(prompt: str | None, version: str | None) -> list[ColumnElement[bool]]:
    c = request_signals.c
    return [
        c.prompt.is_(None) if prompt is None else c.prompt == prompt,
        c.version.is_(None) if version is None else c.version == version,
    ]
