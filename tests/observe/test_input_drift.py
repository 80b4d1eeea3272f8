"""Input drift: `drift_report` reads both windows' logged inputs from the request log (the last
user turn's text), embeds them and tests their means: one topic against another drifts, the
same mix of topics does not; without an embedder or with too few inputs the result says so."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from tests.observe.topics import BILLING, SHIPPING, texts
from tether.cache.embedders.base import Embedder
from tether.cache.embedders.registry import create_embedder
from tether.cache.embedders.testing import FakeEmbedder
from tether.observe.alert_rules import DriftThresholds
from tether.observe.drift import INPUT_SIGNAL, DriftResult, drift_report, input_drift
from tether.observe.request_log import RequestRecord
from tether.store.engine import open_database
from tether.store.requests_inputs import input_text, logged_inputs
from tether.store.tables import requests

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
THRESHOLDS = DriftThresholds(min_sample=30)


def record(request_id: str, at: datetime, content: Any, *, version: str = "1.0.0",
           prompt: str = "support") -> RequestRecord:  # fmt: skip
    messages = [{"role": "system", "content": "Sort the ticket."},
                {"role": "user", "content": content}]  # fmt: skip
    return RequestRecord(
        id=request_id, at=at, endpoint="generate", key_id=None, model="fake", provider="fake",
        upstream_model=None, prompt=prompt, prompt_version=version, status=200, error=None,
        stream=False, messages=json.dumps(messages), response="ok", output=None, contract=None,
        valid=None, attempts=None, input_tokens=10, output_tokens=2, cost_usd=0.0,
        latency_ms=1.0,
    )  # fmt: skip


def log_inputs(engine: Engine, contents: Sequence[Any], start: datetime, step: timedelta,
               tag: str, **fields: Any) -> None:  # fmt: skip
    rows = [record(f"{tag}-{i}", start + step * i, c, **fields).row()
            for i, c in enumerate(contents)]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(requests), rows)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'tether.db'}")
    yield db
    db.dispose()


def seed_windows(engine: Engine, baseline: list[str], recent: list[str]) -> None:
    """`baseline` spread over the week before the last day, `recent` over the last day."""
    log_inputs(engine, baseline, NOW - timedelta(days=6), timedelta(hours=2), "old")
    log_inputs(engine, recent, NOW - timedelta(hours=20), timedelta(minutes=10), "new")


def input_result(engine: Engine, embedder: Embedder | None, **windows: Any) -> DriftResult:
    windows = {"recent": timedelta(days=1), "baseline": timedelta(days=7), **windows}
    report = drift_report(engine, "support", "1.0.0", now=NOW, thresholds=THRESHOLDS,
                          embedder=embedder, **windows)  # fmt: skip
    (found,) = [r for r in report.results if r.signal == INPUT_SIGNAL]
    return found


def test_inputs_on_another_topic_drift(engine: Engine) -> None:
    seed_windows(engine, texts(BILLING, 60, 1), texts(SHIPPING, 60, 2))
    result = input_result(engine, FakeEmbedder())
    assert result.statistic == "embedding_p"
    assert (result.baseline_n, result.recent_n) == (60, 60)
    assert result.drifted
    assert result.value is not None
    assert result.value < THRESHOLDS.p_value


def test_inputs_from_the_same_mix_do_not_drift(engine: Engine) -> None:
    mix = BILLING + SHIPPING
    seed_windows(engine, texts(mix, 60, 3), texts(mix, 60, 4))
    result = input_result(engine, FakeEmbedder())
    assert result.value is not None
    assert not result.drifted
    assert result.value > 0.01


def test_the_bundled_embedder_sees_a_change_of_topic(engine: Engine) -> None:
    minilm = create_embedder("minilm")
    seed_windows(engine, texts(BILLING, 40, 5), texts(SHIPPING, 40, 6))
    moved = input_result(engine, minilm)
    assert (moved.baseline_n, moved.recent_n) == (40, 40)
    assert moved.drifted, moved


def test_the_same_topic_under_the_bundled_embedder_does_not_drift(engine: Engine) -> None:
    log_inputs(engine, texts(BILLING, 80, 7), NOW - timedelta(days=6), timedelta(hours=1), "b")
    result = input_result(engine, create_embedder("minilm"), recent=40, baseline=40)
    assert (result.baseline_n, result.recent_n) == (40, 40)
    assert result.value is not None
    assert not result.drifted


def test_request_windows_split_at_the_nth_newest_request(engine: Engine) -> None:
    log_inputs(engine, texts(BILLING, 50, 8), NOW - timedelta(days=3), timedelta(minutes=30), "b")
    log_inputs(engine, texts(SHIPPING, 40, 9), NOW - timedelta(hours=10), timedelta(minutes=5),
               "s")  # fmt: skip
    result = input_result(engine, FakeEmbedder(), recent=40, baseline=45)
    assert (result.baseline_n, result.recent_n) == (45, 40)
    assert result.drifted
    # fewer requests than the recent window: every one is recent, none is baseline
    few = input_result(engine, FakeEmbedder(), recent=500, baseline=40)
    assert (few.baseline_n, few.recent_n) == (0, 90)
    assert not few.drifted


def test_without_an_embedder_or_enough_inputs_nothing_is_tested(engine: Engine) -> None:
    seed_windows(engine, texts(BILLING, 40, 10), texts(SHIPPING, 10, 11))
    embedder = FakeEmbedder()
    few = input_result(engine, embedder)
    assert (few.value, few.drifted, few.recent_n) == (None, False, 10)
    assert "fewer than 30" in few.note
    assert embedder.calls == []  # nothing embedded for a test that cannot run
    off = input_result(engine, None)
    assert (off.value, off.drifted) == (None, False)
    assert "no embedder" in off.note


def test_only_this_prompt_versions_inputs_count(engine: Engine) -> None:
    seed_windows(engine, texts(BILLING, 35, 12), texts(BILLING, 35, 13))
    start = NOW - timedelta(hours=20)
    log_inputs(engine, texts(SHIPPING, 50, 14), start, timedelta(minutes=5), "other-version",
               version="2.0.0")  # fmt: skip
    log_inputs(engine, texts(SHIPPING, 50, 15), start, timedelta(minutes=5), "other-prompt",
               prompt="triage")  # fmt: skip
    result = input_result(engine, FakeEmbedder())
    assert (result.baseline_n, result.recent_n) == (35, 35)
    assert not result.drifted


def test_a_window_is_capped_at_its_newest_inputs(engine: Engine) -> None:
    log_inputs(engine, [f"question {i}" for i in range(30)], NOW - timedelta(hours=5),
               timedelta(minutes=1), "q")  # fmt: skip
    newest = logged_inputs(engine, prompt="support", version="1.0.0", until=NOW, limit=10)
    assert [i.text for i in newest] == [f"question {i}" for i in range(20, 30)]  # oldest first


def test_a_report_without_signals_still_tests_the_inputs(engine: Engine) -> None:
    seed_windows(engine, texts(BILLING, 30, 16), texts(SHIPPING, 30, 17))
    report = drift_report(engine, "support", "1.0.0", now=NOW, recent=timedelta(days=1),
                          baseline=timedelta(days=7), thresholds=THRESHOLDS,
                          embedder=FakeEmbedder())  # fmt: skip
    assert [r.signal for r in report.results] == [INPUT_SIGNAL]
    assert report.recent[1] is not None
    assert report.baseline[0] is not None
    empty = drift_report(engine, "nothing", None, now=NOW, recent=timedelta(days=1),
                         baseline=timedelta(days=7), thresholds=THRESHOLDS)  # fmt: skip
    assert empty.results == []


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
          {"role": "user", "content": "  last  "}], "last"),
        ([{"role": "user", "content": [{"type": "text", "text": "look at"},
                                       {"type": "image_url", "image_url": {"url": "x"}},
                                       {"type": "text", "text": "this"}]}], "look at\nthis"),
        ([{"role": "system", "content": "only a system turn"}], ""),
        ([{"role": "user", "content": None}], ""),
        ({"not": "a list"}, ""),
    ],
)  # fmt: skip
def test_the_input_is_the_last_user_turns_text(messages: Any, expected: str) -> None:
    assert input_text(json.dumps(messages)) == expected


def test_broken_messages_give_no_input() -> None:
    assert input_text("{not json") == ""
    assert input_text(None) == ""


def test_input_drift_embeds_both_windows_in_one_call() -> None:
    embedder = FakeEmbedder()
    result = input_drift(texts(BILLING, 30, 18), texts(SHIPPING, 30, 19), embedder, THRESHOLDS)
    assert result.drifted
    assert [len(c) for c in embedder.calls] == [60]
