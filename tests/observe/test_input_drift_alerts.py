"""Input drift as an alert rule: `drift:input_embedding` with `embedding_p`, checked by
`run_drift_checks` on the logged inputs of both time windows. A change of topic fires one alert
(stored, delivered to the log sink, then quiet for the cooldown); the same mix, too few inputs,
another prompt or no embedder fire nothing; the settings refuse the combinations that cannot
work, naming the rule and the fix."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import tomllib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from tests.observe.topics import BILLING, SHIPPING, texts
from tether.cache.embedders.testing import FakeEmbedder
from tether.observe.alert_rules import AlertRule, AlertSettings
from tether.observe.alerts import (
    AlertEngine,
    drift_check_loop,
    input_embedder,
    run_drift_checks,
)
from tether.observe.detectors import shared_embedder
from tether.observe.drift import INPUT_SIGNAL
from tether.observe.request_log import RequestRecord
from tether.store.alerts import recent_alerts
from tether.store.engine import open_database
from tether.store.tables import requests

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
DAY = 86400.0
README = Path(__file__).resolve().parents[2] / "README.md"


def log_inputs(engine: Engine, contents: Sequence[str], start: datetime, step: timedelta,
               tag: str, prompt: str = "support") -> None:  # fmt: skip
    """Request rows as the request log writes them, one user turn each."""
    rows = []
    for i, content in enumerate(contents):
        messages = [{"role": "system", "content": "Sort the ticket."},
                    {"role": "user", "content": content}]  # fmt: skip
        rows.append(RequestRecord(
            id=f"{tag}-{i}", at=start + step * i, endpoint="generate", key_id=None, model="fake",
            provider="fake", upstream_model=None, prompt=prompt, prompt_version="1.0.0",
            status=200, error=None, stream=False, messages=json.dumps(messages), response="ok",
            output=None, contract=None, valid=None, attempts=None, input_tokens=10,
            output_tokens=2, cost_usd=0.0, latency_ms=1.0,
        ).row())  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(requests), rows)


def seed(engine: Engine, baseline: list[str], recent: list[str], now: datetime = NOW) -> None:
    """`baseline` over the six days before the last one, `recent` over the last day."""
    log_inputs(engine, baseline, now - timedelta(days=6), timedelta(hours=2), "old")
    log_inputs(engine, recent, now - timedelta(hours=20), timedelta(minutes=10), "new")


def input_rule(**fields: Any) -> AlertRule:
    defaults: dict[str, Any] = dict(name="inputs", signal="drift:input_embedding",
                                    statistic="embedding_p", threshold=0.001, window_s=DAY,
                                    baseline_s=6 * DAY, min_sample=30, cooldown_s=DAY)  # fmt: skip
    return AlertRule(**{**defaults, **fields})


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'tether.db'}")
    yield db
    db.dispose()


def test_a_change_of_topic_fires_one_alert(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seed(engine, texts(BILLING, 60, 1), texts(SHIPPING, 60, 2))
    settings = AlertSettings(rules=[input_rule()])
    with caplog.at_level(logging.WARNING, logger="tether.alerts"):
        (alert,) = run_drift_checks(engine, settings, NOW, embedder=FakeEmbedder())
    assert (alert.rule, alert.prompt, alert.version) == ("inputs", "support", "1.0.0")
    assert alert.signal == f"drift:{INPUT_SIGNAL}"
    assert alert.value < 0.001
    assert "over 60 recent inputs against a baseline of 60" in alert.message
    assert alert.delivered["log"]["ok"]
    sent = [r.getMessage() for r in caplog.records if r.name == "tether.alerts"]
    assert any(m.startswith("alert inputs on support@1.0.0: input_embedding") for m in sent)
    (stored,) = recent_alerts(engine)
    assert stored.rule == "inputs"
    assert stored.delivered == {"log": {"ok": True, "attempts": 1}}
    # the cooldown: an hour later the same shift raises nothing, and nothing is embedded
    embedder = FakeEmbedder()
    assert run_drift_checks(engine, settings, NOW + timedelta(hours=1), embedder=embedder) == []
    assert embedder.calls == []
    assert len(recent_alerts(engine)) == 1


def test_the_same_mix_of_topics_fires_nothing(engine: Engine) -> None:
    mix = BILLING + SHIPPING
    seed(engine, texts(mix, 60, 3), texts(mix, 60, 4))
    settings = AlertSettings(rules=[input_rule()])
    assert run_drift_checks(engine, settings, NOW, embedder=FakeEmbedder()) == []
    assert recent_alerts(engine) == []


def test_too_few_inputs_or_another_prompt_embed_nothing(engine: Engine) -> None:
    seed(engine, texts(BILLING, 60, 5), texts(SHIPPING, 60, 6))
    embedder = FakeEmbedder()
    settings = AlertSettings(rules=[input_rule(min_sample=61),
                                    input_rule(name="other", prompt="triage")])  # fmt: skip
    assert run_drift_checks(engine, settings, NOW, embedder=embedder) == []
    assert embedder.calls == []


def test_each_prompt_is_tested_on_its_own_inputs(engine: Engine) -> None:
    seed(engine, texts(BILLING, 60, 7), texts(SHIPPING, 60, 8))
    # another prompt's inputs move the other way in the same windows: they stay apart
    log_inputs(engine, texts(BILLING, 40, 9), NOW - timedelta(hours=20),
               timedelta(minutes=10), "triage", prompt="triage")  # fmt: skip
    log_inputs(engine, texts(BILLING, 40, 10), NOW - timedelta(days=6), timedelta(hours=2),
               "triage-old", prompt="triage")  # fmt: skip
    settings = AlertSettings(rules=[input_rule()])
    fired = run_drift_checks(engine, settings, NOW, embedder=FakeEmbedder())
    assert [a.prompt for a in fired] == ["support"]
    only = AlertSettings(rules=[input_rule(prompt="triage")])
    assert run_drift_checks(engine, only, NOW, embedder=FakeEmbedder()) == []


def test_without_an_embedder_the_rule_is_skipped_with_one_line(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seed(engine, texts(BILLING, 60, 11), texts(SHIPPING, 60, 12))
    settings = AlertSettings(rules=[input_rule()])
    with caplog.at_level(logging.INFO, logger="tether.alerts"):
        assert run_drift_checks(engine, settings, NOW) == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == "tether.alerts"]
    assert "inputs" in line
    assert "no embedder" in line
    assert recent_alerts(engine) == []


def test_the_gateway_loop_embeds_with_the_embedder_it_is_given(engine: Engine) -> None:
    now = datetime.now(UTC)
    seed(engine, texts(BILLING, 60, 13), texts(SHIPPING, 60, 14), now=now)
    settings = AlertSettings(rules=[input_rule()], check_interval_s=1)
    loop = drift_check_loop(engine, settings, embedder=FakeEmbedder())
    with pytest.raises(TimeoutError):
        asyncio.run(asyncio.wait_for(loop, 2.5))
    (alert,) = recent_alerts(engine)
    assert alert.rule == "inputs"


def test_the_gateway_gets_the_shared_embedder_only_for_input_rules() -> None:
    with_rule = AlertSettings(rules=[input_rule()])
    assert input_embedder(with_rule, "minilm") is shared_embedder("minilm")
    assert input_embedder(with_rule, "none") is None
    assert input_embedder(AlertSettings(), "minilm") is None
    # the signal worker's engine never sees the rule: the schedule reads the request log
    assert AlertEngine(None, with_rule, background=False).rules == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"signal": "drift:latency_ms"}, "set signal = 'drift:input_embedding'"),
        ({"signal": "valid"}, "set signal = 'drift:input_embedding'"),
        ({"statistic": "psi"}, "is tested by statistic = 'embedding_p'"),
        ({"statistic": "mean"}, "is tested by statistic = 'embedding_p'"),
        ({"window_s": None, "baseline_s": None, "window_requests": 200},
         "set window_s \\(and baseline_s\\) instead of window_requests"),
        ({"baseline_requests": 800}, "instead of window_requests and baseline_requests"),
        ({"threshold": 0.0}, "threshold is the p-value below which the rule fires"),
        ({"threshold": 1.5}, "threshold is the p-value below which the rule fires"),
    ],
)  # fmt: skip
def test_settings_refuse_what_cannot_work(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=f"rule 'inputs': .*{expected}"):
        input_rule(**fields)


def test_a_drift_signal_names_the_statistics_it_takes() -> None:
    with pytest.raises(ValueError, match="takes statistic psi or ks_p or chi2_p \\(embedding_p"):
        AlertRule(name="x", signal="drift:latency_ms", statistic="mean", threshold=1,
                  window_s=DAY)  # fmt: skip


def test_the_readme_example_loads() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    (example,) = [b for b in blocks if "drift:input_embedding" in b]
    settings = AlertSettings.model_validate(tomllib.loads(example)["observe"]["alerts"])
    (rule,) = [r for r in settings.rules if r.watches_inputs]
    assert rule.statistic == "embedding_p"
    assert rule.fires_below


def test_an_input_rule_without_an_embedder_is_a_config_error() -> None:
    from tether.observe.config import ObserveSettings

    with pytest.raises(ValueError, match=r"'inputs' compares the inputs' embeddings.*evasive_"):
        ObserveSettings(evasive_embedder="none", alerts=AlertSettings(rules=[input_rule()]))
    assert ObserveSettings(evasive_embedder="none").alerts.rules == []
    assert ObserveSettings(alerts=AlertSettings(rules=[input_rule()])).evasive_embedder == "minilm"
