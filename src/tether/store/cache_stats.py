"""What the response cache did, from the request log: lookups, exact and semantic hits, the hit
rate, money and time saved and the guards' vetoes, per prompt and overall, over a time range.

Counts and sums run in SQL, grouped by prompt and decision kind; only the decisions that name a
vetoing guard are read back and parsed (JSON functions differ between the databases). Plain
functions of an Engine: callers on the event loop run them in a thread.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, case, func, select

from tether.store.dialect import utc_bound
from tether.store.tables import requests

# Decisions that looked the request up (bypass and skip did not).
LOOKUP_KINDS = ("miss", "exact", "semantic")
# The recorder stores savings only for an answer the cache served (a re-checked semantic hit
# called the model, so it saved nothing): a served hit is a row with savings.
SERVED = requests.c.cache_saved_usd.is_not(None)
LOOKED_UP = requests.c.cache.in_(LOOKUP_KINDS)


@dataclass(frozen=True)
class CacheCounts:
    """One prompt's numbers (prompt None: calls without a registered prompt), or the total."""

    prompt: str | None
    consulted: int  # requests with a cache decision (any kind)
    lookups: int  # miss, exact or semantic
    exact_hits: int
    semantic_hits: int  # served from a neighbour
    verified: int  # semantic hits re-checked by calling the model (served nothing)
    misses: int
    bypassed: int  # the caller asked not to read the cache
    skipped: int  # the request could not be cached
    saved_usd: float
    saved_s: float
    vetoes: dict[str, int] = field(default_factory=dict)  # guard -> neighbours it vetoed

    @property
    def hits(self) -> int:
        return self.exact_hits + self.semantic_hits

    @property
    def hit_rate(self) -> float | None:
        """Share of lookups answered from the cache; None when nothing was looked up."""
        return self.hits / self.lookups if self.lookups else None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "hits": self.hits, "hit_rate": self.hit_rate}


@dataclass(frozen=True)
class CacheSummary:
    since: datetime | None
    until: datetime | None
    prompt: str | None  # the prompt asked about; None: every request
    total: CacheCounts
    prompts: list[CacheCounts]  # most consulted first

    def to_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "prompt": self.prompt,
            "total": self.total.to_json(),
            "prompts": [counts.to_json() for counts in self.prompts],
        }


def cache_summary(
    engine: Engine,
    since: datetime | None,
    prompt: str | None,
    *,
    until: datetime | None = None,
) -> CacheSummary:
    """The cache's numbers over [since, until) (None: unbounded), for one prompt or all."""
    since, until = utc_bound(since), utc_bound(until)
    c = requests.c
    conditions: list[ColumnElement[bool]] = [c.cache.is_not(None)]
    if since is not None:
        conditions.append(c.at >= since)
    if until is not None:
        conditions.append(c.at < until)
    if prompt is not None:
        conditions.append(c.prompt == prompt)
    where = and_(*conditions)
    grouped = (
        select(
            c.prompt,
            c.cache,
            func.count().label("requests"),
            func.coalesce(func.sum(case((SERVED, 1), else_=0)), 0).label("served"),
            func.coalesce(func.sum(c.cache_saved_usd), 0.0).label("saved_usd"),
            func.coalesce(func.sum(c.cache_saved_s), 0.0).label("saved_s"),
        )
        .where(where)
        .group_by(c.prompt, c.cache)
    )
    # The JSON names the key only when a guard vetoed (to_json leaves out empty fields).
    vetoed = select(c.prompt, c.cache_detail).where(
        where, c.cache_detail.contains('"vetoed_by"', autoescape=True)
    )
    with engine.connect() as conn:
        groups = conn.execute(grouped).all()
        vetoes = _vetoes(conn.execute(vetoed))
    per_prompt: dict[str | None, list[Any]] = {}
    for row in groups:
        per_prompt.setdefault(row.prompt, []).append(row)
    prompts = [
        _counts(name, rows, vetoes.get(name, Counter())) for name, rows in per_prompt.items()
    ]
    prompts.sort(key=lambda p: (-p.consulted, p.prompt or ""))
    return CacheSummary(since, until, prompt, _total(prompts), prompts)


def _vetoes(rows: Iterable[Any]) -> dict[str | None, Counter[str]]:
    found: dict[str | None, Counter[str]] = {}
    for row in rows:
        try:
            detail = json.loads(row.cache_detail)
        except ValueError:
            continue  # stored by hand or cut short: counted nowhere rather than failing
        guard = detail.get("vetoed_by") if isinstance(detail, dict) else None
        if guard is not None:
            found.setdefault(row.prompt, Counter())[str(guard)] += 1
    return found


def _counts(prompt: str | None, rows: list[Any], vetoes: Counter[str]) -> CacheCounts:
    by_kind = {row.cache: row for row in rows}

    def number(kind: str, column: str = "requests") -> int:
        row = by_kind.get(kind)
        return int(getattr(row, column)) if row is not None else 0

    semantic_served = number("semantic", "served")
    return CacheCounts(
        prompt=prompt,
        consulted=sum(int(r.requests) for r in rows),
        lookups=sum(number(k) for k in LOOKUP_KINDS),
        exact_hits=number("exact", "served"),
        semantic_hits=semantic_served,
        verified=number("semantic") - semantic_served,
        misses=number("miss"),
        bypassed=number("bypass"),
        skipped=number("skip"),
        saved_usd=sum(float(r.saved_usd) for r in rows),
        saved_s=sum(float(r.saved_s) for r in rows),
        vetoes=dict(vetoes.most_common()),
    )


def _total(prompts: list[CacheCounts]) -> CacheCounts:
    vetoes: Counter[str] = Counter()
    for p in prompts:
        vetoes.update(p.vetoes)
    return CacheCounts(
        prompt=None,
        consulted=sum(p.consulted for p in prompts),
        lookups=sum(p.lookups for p in prompts),
        exact_hits=sum(p.exact_hits for p in prompts),
        semantic_hits=sum(p.semantic_hits for p in prompts),
        verified=sum(p.verified for p in prompts),
        misses=sum(p.misses for p in prompts),
        bypassed=sum(p.bypassed for p in prompts),
        skipped=sum(p.skipped for p in prompts),
        saved_usd=sum(p.saved_usd for p in prompts),
        saved_s=sum(p.saved_s for p in prompts),
        vetoes=dict(vetoes.most_common()),
    )
