"""The dashboard shows the response cache's decisions: the costs page's hit rate, money and
latency saved in total, per breakdown and per prompt with the guards' vetoes; the request
detail page's decision with its score against the threshold. Values from requests are text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import httpx2
import pytest

from tether.cache.decision import CacheDecision
from tether.observe.request_log import RequestRecord

from .conftest import LiveGateway
from .test_dashboard import assert_no_markup_from_data
from .test_dashboard_costs import HOSTILE_PROMPT, NOW, cells, record, value

HOSTILE = "<img src=x onerror=alert(1)>"


def cached(id: str, decision: CacheDecision, *, prompt: str | None = "triage") -> RequestRecord:
    hit = decision.hit
    row = record(id, NOW - timedelta(hours=1), 0.0 if hit else 0.5, prompt=prompt, version="1.0")
    return replace(
        row,
        cache=decision.kind,
        cache_saved_usd=decision.saved_usd if hit else None,
        cache_saved_s=decision.saved_s if hit else None,
        cache_detail=json.dumps(decision.to_json()),
    )


@pytest.fixture
def http(live: LiveGateway) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=live.url, timeout=30, headers=live.admin) as client:
        yield client


@pytest.fixture
def seeded(live: LiveGateway) -> LiveGateway:
    log = live.gateway.log
    log.record(cached("h1", CacheDecision("exact", entry=HOSTILE, saved_usd=0.5, saved_s=2.0)))
    log.record(
        cached(
            "h2",
            CacheDecision(
                "semantic", similarity=0.971, score=0.934, threshold=0.9, entry="k2",
                saved_usd=0.25, saved_s=12.5,
            ),
        )
    )  # fmt: skip
    log.record(
        cached(
            "m1",
            CacheDecision("miss", similarity=0.9, score=0.42, threshold=0.9, vetoed_by=HOSTILE,
                          reason=HOSTILE, stored=True),
            prompt=HOSTILE_PROMPT,
        )
    )  # fmt: skip
    log.record(cached("m2", CacheDecision("miss")))
    log.record(cached("b1", CacheDecision("bypass")))
    log.record(record("plain", NOW - timedelta(hours=1), 1.0))  # not consulted
    assert log.flush()
    return live


def test_costs_page_shows_the_savings(seeded: LiveGateway, http: httpx2.Client) -> None:
    html = http.get("/dashboard/costs").text
    assert value(html, "cache hit rate") == "50%"  # 2 of 4 lookups (the bypass is none)
    assert value(html, "saved by the cache") == "$0.75"
    assert value(html, "latency saved by the cache") == "14.5 s"
    by_prompt = cells(html, "by-prompt")
    assert by_prompt["triage"][-3:] == ["66.7%", "$0.75", "14.5 s"]
    assert by_prompt["total"][-3:] == ["50%", "$0.75", "14.5 s"]
    cache = cells(html, "cache-by-prompt")
    assert cache["triage"] == ["3", "1", "1", "66.7%", "$0.75", "14.5 s", "1 / 0", "—"]
    hostile = cache["&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;"]
    assert hostile[0] == "1"
    assert hostile[-1] == "&lt;img src=x onerror=alert(1)&gt;: 1"
    assert cache["total"][:4] == ["4", "1", "1", "50%"]
    assert HOSTILE not in html
    assert_no_markup_from_data(html)


def test_costs_page_without_lookups(live: LiveGateway, http: httpx2.Client) -> None:
    live.gateway.log.record(record("plain", NOW - timedelta(hours=1), 1.0))
    assert live.gateway.log.flush()
    html = http.get("/dashboard/costs").text
    assert value(html, "cache hit rate") == "—"
    assert "The cache was not consulted in this period." in html
    assert len(cells(html, "by-model")["total"]) == 5  # no cache columns


def test_detail_page_shows_a_semantic_hit(seeded: LiveGateway, http: httpx2.Client) -> None:
    html = http.get("/dashboard/requests/h2").text
    assert "<h2>Cache</h2>" in html
    assert "semantic hit: served a similar request&#39;s answer" in html
    assert "<dt>score</dt><dd>0.934 (threshold 0.900: reached)</dd>" in html
    assert "<dt>similarity</dt><dd>0.971</dd>" in html
    assert "<dt>entry</dt><dd><code>k2</code></dd>" in html
    assert "<dt>saved</dt><dd>$0.25 · 12.5 s sooner</dd>" in html
    assert_no_markup_from_data(html)


def test_detail_page_shows_a_veto_as_text(seeded: LiveGateway, http: httpx2.Client) -> None:
    html = http.get("/dashboard/requests/m1").text
    assert "miss: no stored answer was close enough" in html
    assert "<dt>score</dt><dd>0.420 (threshold 0.900: not reached)</dd>" in html
    assert '<dt>vetoed by</dt><dd class="bad">&lt;img src=x onerror=alert(1)&gt;</dd>' in html
    assert "<dt>reason</dt><dd>&lt;img src=x onerror=alert(1)&gt;</dd>" in html
    assert "this answer was filed for later requests" in html
    assert "<dt>saved</dt>" not in html
    assert HOSTILE not in html
    assert_no_markup_from_data(html)

    exact = http.get("/dashboard/requests/h1").text
    assert "<dt>entry</dt><dd><code>&lt;img src=x onerror=alert(1)&gt;</code></dd>" in exact
    assert HOSTILE not in exact


def test_detail_page_without_a_decision(seeded: LiveGateway, http: httpx2.Client) -> None:
    assert "<h2>Cache</h2>" not in http.get("/dashboard/requests/plain").text
    assert (
        "bypassed: the caller asked for a fresh answer" in http.get("/dashboard/requests/b1").text
    )
