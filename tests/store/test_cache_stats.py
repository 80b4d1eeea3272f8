"""The cache's numbers from a hand-made request log, the same on SQLite and PostgreSQL: hits by
kind, the hit rate over lookups only, savings summed, vetoes counted by guard, the time range and
the prompt filter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tether.cache.decision import CacheDecision
from tether.observe.request_log import RequestRecord
from tether.store import open_database
from tether.store.cache_stats import cache_summary
from tether.store.costs import cost_breakdown
from tether.store.tables import requests

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


def record(
    id: str, decision: CacheDecision | None, *, prompt: str | None = "triage",
    at: datetime = NOON, detail: str | None = None,
) -> RequestRecord:  # fmt: skip
    hit = decision is not None and decision.hit
    return RequestRecord(
        id=id, at=at, endpoint="chat.completions", key_id=None, model="fast", provider=None,
        upstream_model=None, prompt=prompt, prompt_version=None, status=200, error=None,
        stream=False, messages="[]", response="ok", output=None, contract=None, valid=None,
        attempts=None, input_tokens=0, output_tokens=0, cost_usd=0.0 if hit else 0.01,
        latency_ms=1.0,
        cache=decision.kind if decision else None,
        cache_saved_usd=decision.saved_usd if hit and decision else None,
        cache_saved_s=decision.saved_s if hit and decision else None,
        cache_detail=detail or (json.dumps(decision.to_json()) if decision else None),
    )  # fmt: skip


ROWS = [
    record("e1", CacheDecision("exact", entry="k1", saved_usd=0.5, saved_s=2.0)),
    record("e2", CacheDecision("exact", entry="k1", saved_usd=0.25, saved_s=1.0)),
    record("s1", CacheDecision("semantic", score=0.97, threshold=0.9, saved_usd=1.0, saved_s=3.5)),
    # re-checked by calling the model: a lookup, not a hit, nothing saved
    record("s2", CacheDecision("semantic", score=0.95, threshold=0.9, verified=True)),
    record("m1", CacheDecision("miss", vetoed_by="numbers", stored=True)),
    record("m2", CacheDecision("miss", vetoed_by="numbers")),
    record("m3", CacheDecision("miss", vetoed_by="negation")),
    record("m4", CacheDecision("miss")),
    record("b1", CacheDecision("bypass")),
    record("k1", CacheDecision("skip", reason="temperature above 0")),
    record("n1", None),  # the cache was not consulted
    # no prompt
    record("p1", CacheDecision("exact", saved_usd=0.125, saved_s=0.5), prompt=None),
    record("p2", CacheDecision("miss", vetoed_by="numbers"), prompt=None),
    record("p3", CacheDecision("miss"), prompt=None, detail="not json"),
    # another prompt, and outside the range
    record("o1", CacheDecision("semantic", saved_usd=2.0, saved_s=1.5), prompt="<b>x</b>"),
    record("old", CacheDecision("exact", saved_usd=100.0, saved_s=100.0), at=NOON - timedelta(30)),
]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    found = open_database(database_url)
    with found.begin() as conn:
        conn.execute(sa.insert(requests), [r.row() for r in ROWS])
    try:
        yield found
    finally:
        found.dispose()


def test_one_prompts_numbers(engine: sa.Engine) -> None:
    summary = cache_summary(engine, NOON - timedelta(days=1), "triage")
    assert [p.prompt for p in summary.prompts] == ["triage"]
    t = summary.total
    assert (t.consulted, t.lookups, t.exact_hits, t.semantic_hits, t.verified) == (10, 8, 2, 1, 1)
    assert (t.misses, t.bypassed, t.skipped, t.hits) == (4, 1, 1, 3)
    assert t.hit_rate == pytest.approx(3 / 8)
    assert t.saved_usd == pytest.approx(1.75)
    assert t.saved_s == pytest.approx(6.5)
    assert t.vetoes == {"numbers": 2, "negation": 1}
    assert list(t.vetoes) == ["numbers", "negation"]  # most first


def test_every_prompt_and_the_total(engine: sa.Engine) -> None:
    summary = cache_summary(engine, NOON - timedelta(days=1), None)
    by_prompt = {p.prompt: p for p in summary.prompts}
    assert [p.prompt for p in summary.prompts] == ["triage", None, "<b>x</b>"]  # most consulted
    unnamed = by_prompt[None]
    assert (unnamed.lookups, unnamed.exact_hits, unnamed.misses) == (3, 1, 2)
    assert unnamed.vetoes == {"numbers": 1}  # the unparsable detail is counted nowhere
    assert by_prompt["<b>x</b>"].hit_rate == 1.0
    t = summary.total
    assert (t.consulted, t.lookups, t.hits) == (14, 12, 5)
    assert t.saved_usd == pytest.approx(1.75 + 0.125 + 2.0)
    assert t.saved_s == pytest.approx(6.5 + 0.5 + 1.5)
    assert t.vetoes == {"numbers": 3, "negation": 1}


def test_the_time_range(engine: sa.Engine) -> None:
    everything = cache_summary(engine, None, None)
    assert everything.total.consulted == 15
    assert everything.total.saved_usd == pytest.approx(103.875)
    # a naive time is UTC; the end is excluded
    before = cache_summary(engine, None, None, until=NOON.replace(tzinfo=None))
    assert before.total.consulted == 1
    assert cache_summary(engine, NOON + timedelta(seconds=1), None).prompts == []


def test_nothing_consulted(engine: sa.Engine) -> None:
    summary = cache_summary(engine, None, "missing")
    assert summary.prompts == []
    assert summary.total.lookups == 0
    assert summary.total.hit_rate is None
    assert summary.total.vetoes == {}


def test_cost_breakdowns_carry_the_cache_numbers(engine: sa.Engine) -> None:
    report = cost_breakdown(engine, ["prompt"], NOON - timedelta(days=1), NOON + timedelta(1))
    by_prompt = {r.group[0]: r for r in report.rows}
    triage = by_prompt["triage"]
    assert (triage.requests, triage.cache_lookups, triage.cache_hits) == (11, 8, 3)
    assert triage.cache_hit_rate == pytest.approx(3 / 8)
    assert (triage.saved_usd, triage.saved_s) == pytest.approx((1.75, 6.5))
    t = report.total
    assert (t.cache_lookups, t.cache_hits) == (12, 5)
    assert t.saved_usd == pytest.approx(3.875)
    assert t.saved_s == pytest.approx(8.5)
    assert cost_breakdown(engine, ["model"], NOON + timedelta(1)).total.cache_hit_rate is None
