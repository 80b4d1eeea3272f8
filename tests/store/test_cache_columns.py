"""Each request's cache decision reaches its request-log row: the kind, what a hit saved (only a
served hit saved anything), the whole decision as JSON; no decision, no values. Rows spooled
before the columns existed are still stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tether.cache.decision import CacheDecision
from tether.messages import Message
from tether.observe.recorder import request_record
from tether.observe.request_log import RequestLog
from tether.observe.spool import Spool
from tether.pipeline.context import Ask, Context
from tether.store import open_database
from tether.store.tables import requests


def context(decision: CacheDecision | None) -> Context:
    ctx = Context(Ask(endpoint="chat.completions", messages=(Message("user", "hi"),)))
    ctx.model = "fast"
    ctx.cache = decision
    return ctx


def test_a_served_hit_carries_its_savings_and_no_cost() -> None:
    decision = CacheDecision(
        "semantic", similarity=0.97, score=0.93, threshold=0.9, entry="k1", saved_usd=0.02,
        saved_s=1.5,
    )  # fmt: skip
    row = request_record(context(decision))
    assert (row.cache, row.cache_saved_usd, row.cache_saved_s) == ("semantic", 0.02, 1.5)
    assert (row.cost_usd, row.input_tokens, row.output_tokens, row.attempts) == (0.0, 0, 0, None)
    assert row.cache_detail is not None
    assert json.loads(row.cache_detail) == {
        "kind": "semantic", "similarity": 0.97, "score": 0.93, "threshold": 0.9, "entry": "k1",
        "saved_usd": 0.02, "saved_s": 1.5,
    }  # fmt: skip


def test_a_free_hit_saved_zero_not_nothing() -> None:
    row = request_record(context(CacheDecision("exact", entry="k")))
    assert (row.cache, row.cache_saved_usd, row.cache_saved_s) == ("exact", 0.0, 0.0)


@pytest.mark.parametrize(
    "decision",
    [
        CacheDecision("miss", vetoed_by="numbers", stored=True),
        CacheDecision("semantic", score=0.95, threshold=0.9, verified=True, saved_usd=0.3),
        CacheDecision("bypass"),
        CacheDecision("skip", reason="streamed <tools>"),
    ],
)
def test_no_savings_unless_the_cache_served(decision: CacheDecision) -> None:
    row = request_record(context(decision))
    assert row.cache == decision.kind
    assert (row.cache_saved_usd, row.cache_saved_s) == (None, None)
    assert row.cache_detail is not None
    assert json.loads(row.cache_detail) == decision.to_json()


def test_no_decision_no_cache_columns() -> None:
    row = request_record(context(None))
    assert (row.cache, row.cache_saved_usd, row.cache_saved_s, row.cache_detail) == (None,) * 4


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    found = open_database(database_url)
    try:
        yield found
    finally:
        found.dispose()


def test_the_columns_are_stored_and_old_spooled_rows_still_replay(
    engine: sa.Engine, tmp_path: Path
) -> None:
    hit = request_record(context(CacheDecision("exact", entry="k", saved_usd=0.5, saved_s=2.0)))
    plain = request_record(context(None))
    # A file spooled by a version without the cache columns, then one row with them.
    old = {k: v for k, v in plain.row().items() if not k.startswith("cache") and k != "route"}
    old["id"] = "req_old"
    Spool(tmp_path / "spool", max_bytes=1 << 20).write([old, hit.row()])

    log = RequestLog(engine, spool_dir=tmp_path / "spool")
    log.start()
    log.record(plain)
    log.close()
    assert log.stats() == {"pending": 0, "spooled": 0, "quarantined": 0, "dropped": 0}
    c = requests.c
    with engine.connect() as conn:
        stored = {
            r.id: tuple(r[1:])
            for r in conn.execute(
                sa.select(c.id, c.cache, c.cache_saved_usd, c.cache_saved_s, c.cache_detail)
            )
        }
    assert stored == {
        hit.id: ("exact", 0.5, 2.0, hit.cache_detail),
        plain.id: (None, None, None, None),
        "req_old": (None, None, None, None),
    }
