"""Drift statistics against known values, and the alert engine fed by signals: a label shift
fires within its window, unchanged traffic raises nothing over 50 windows, KS sees a numeric
shift, the embedding test tells shifted inputs from the same inputs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from tether.observe.alert_rules import AlertRule, AlertSettings, DriftThresholds
from tether.observe.alerts import AlertEngine, run_drift_checks
from tether.observe.drift import (
    Sample,
    chi2_homogeneity,
    chi2_sf,
    compare_signal,
    embedding_drift,
    embedding_result,
    kolmogorov_sf,
    ks_2samp,
    numeric_bins,
    psi,
)
from tether.observe.signals import SignalInput
from tether.store.alerts import recent_alerts
from tether.store.engine import open_database
from tether.store.migrations import migrate
from tether.store.signals import Signal, SignalRow, add_signal_rows

T0 = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = 200


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'tether.db'}")
    migrate(db)
    yield db
    db.dispose()


def request(n: int, *, prompt: str = "triage", version: str = "1.0.0") -> SignalInput:
    return SignalInput(request_id=f"r{n}", at=T0 + timedelta(seconds=n), prompt=prompt,
                       version=version, model="fake", key_id=None, latency_s=0.1,
                       input_tokens=10, output_tokens=5, cost_usd=0.0, status=200, valid=True,
                       repairs=0)  # fmt: skip


def labels(rng: np.random.Generator, positive: float, n: int) -> list[str]:
    return ["positive" if x < positive else "negative" for x in rng.random(n)]


def drift_rule(**fields: object) -> AlertRule:
    values: dict[str, object] = {
        "name": "sentiment-drift",
        "signal": "drift:enum:sentiment",
        "statistic": "chi2_p",
        "threshold": 0.001,
        "window_requests": WINDOW,
        "cooldown_s": 0,
    }
    return AlertRule.model_validate({**values, **fields})


# -- statistics ---------------------------------------------------------------------------------


def test_chi_square_tail_matches_tables() -> None:
    assert chi2_sf(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    assert chi2_sf(9.487729, 4) == pytest.approx(0.05, abs=1e-6)
    assert chi2_sf(100.0, 50) == pytest.approx(3.4549e-5, rel=1e-3)
    assert chi2_sf(0.0, 3) == 1.0


def test_kolmogorov_tail_matches_tables() -> None:
    assert kolmogorov_sf(1.358) == pytest.approx(0.05, abs=1e-3)
    assert kolmogorov_sf(1.628) == pytest.approx(0.01, abs=1e-3)


def test_psi_and_chi_square_see_a_label_shift() -> None:
    before, after = {"positive": 80, "negative": 20}, {"positive": 40, "negative": 60}
    assert psi(before, after) > 0.5
    assert psi(before, before) == 0.0
    statistic, p = chi2_homogeneity(before, after)
    assert statistic == pytest.approx(33.333, rel=1e-3)
    assert p < 1e-7
    # a category seen in one window only: a large but finite PSI (the floor)
    assert 0 < psi({"a": 100}, {"a": 50, "b": 50}) < 10


def test_ks_sees_a_numeric_shift_and_not_noise() -> None:
    rng = np.random.default_rng(3)
    statistic, p = ks_2samp(rng.normal(0, 1, 300), rng.normal(0.5, 1, 300))
    assert statistic > 0.15
    assert p < 1e-4
    _, p_same = ks_2samp(rng.normal(0, 1, 300), rng.normal(0, 1, 300))
    assert p_same > 0.01
    report = compare_signal("length_chars", Sample(list(rng.normal(500, 50, 300))),
                            Sample(list(rng.normal(560, 50, 300))), DriftThresholds())  # fmt: skip
    assert {r.statistic: r.drifted for r in report} == {"ks": True, "ks_p": True}


def test_too_few_samples_never_drift() -> None:
    report = compare_signal("enum:sentiment", Sample(labels=["a"] * 5), Sample(labels=["b"] * 5),
                            DriftThresholds())  # fmt: skip
    assert [r.value for r in report] == [None, None]
    assert not any(r.drifted for r in report)
    assert "fewer than 30" in report[0].note


def test_mean_signals_compare_means() -> None:
    (result,) = compare_signal("evasive", Sample([0.0] * 50), Sample([0.0] * 30 + [1.0] * 20),
                               DriftThresholds())  # fmt: skip
    assert result.statistic == "mean_delta"
    assert result.value == pytest.approx(0.4)
    assert result.drifted


def test_embedding_drift_tells_shifted_inputs_from_the_same() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(0, 1, (80, 16))
    same = rng.normal(0, 1, (80, 16))
    shifted = rng.normal(0, 1, (80, 16)) + np.eye(16)[0] * 0.8  # one direction moved
    thresholds = DriftThresholds(p_value=0.01, permutations=300)
    moved = embedding_result(base, shifted, thresholds, seed=1)
    kept = embedding_result(base, same, thresholds, seed=1)
    assert moved.drifted
    assert moved.value is not None
    assert moved.value < 0.01
    assert not kept.drifted
    # seeded: the same answer twice
    assert embedding_drift(base, same, seed=5) == embedding_drift(base, same, seed=5)
    with pytest.raises(ValueError, match="width"):
        embedding_drift(base, rng.normal(size=(5, 3)))


def test_numbers_fall_in_baseline_quantile_bins() -> None:
    b, r = numeric_bins([float(x) for x in range(100)], [-5.0, 50.0, 500.0])
    assert sum(b.values()) == 100
    assert len(b) == 10
    assert r == {"bin0": 1, "bin5": 1, "bin9": 1}


# -- the alert engine, fed request by request ----------------------------------------------------


def feed(alerts: AlertEngine, values: list[str], start: int) -> None:
    for i, label in enumerate(values):
        alerts(request(start + i), [Signal("enum:sentiment", label=label), Signal("valid", 1.0)])


def test_a_label_shift_fires_within_one_window(engine: Engine) -> None:
    rng = np.random.default_rng(11)
    settings = AlertSettings(rules=[drift_rule(cooldown_s=3600)])
    alerts = AlertEngine(engine, settings, background=False)
    feed(alerts, labels(rng, 0.8, 5 * WINDOW), 0)  # the baseline fills
    assert alerts.fired == []
    shift_at = 5 * WINDOW
    for i, label in enumerate(labels(rng, 0.4, 3 * WINDOW)):
        feed(alerts, [label], shift_at + i)
        if alerts.fired:
            break
    (alert,) = alerts.fired
    assert alert.at <= request(shift_at + WINDOW).at  # within the configured window
    assert alert.value is not None
    assert alert.value < 0.001
    assert "enum:sentiment chi2_p" in alert.message
    stored = recent_alerts(engine)
    assert [(a.rule, a.prompt, a.version) for a in stored] == [
        ("sentiment-drift", "triage", "1.0.0")
    ]
    assert stored[0].delivered["log"]["ok"] is True
    # the condition lasts, the cooldown holds: one alert, not one per window
    feed(alerts, labels(rng, 0.4, 3 * WINDOW), 9 * WINDOW)
    assert len(recent_alerts(engine)) == 1


def test_no_false_alarm_over_50_unchanged_windows(engine: Engine) -> None:
    # p < 0.001 per disjoint window: 50 windows raise a false alarm with probability about 5%
    # (1 - 0.999^50); the seed makes the run fixed. PSI >= 0.2 checked as well.
    rng = np.random.default_rng(2026)
    settings = AlertSettings(rules=[drift_rule(), drift_rule(name="psi", statistic="psi",
                                                             threshold=0.2)])  # fmt: skip
    alerts = AlertEngine(engine, settings, background=False)
    feed(alerts, labels(rng, 0.8, 51 * WINDOW), 0)  # the first window only fills the baseline
    assert alerts.fired == []
    assert recent_alerts(engine) == []


def test_a_ks_rule_fires_on_a_numeric_shift() -> None:
    rng = np.random.default_rng(5)
    rule = drift_rule(name="latency", signal="drift:latency_ms", statistic="ks_p")
    alerts = AlertEngine(None, AlertSettings(rules=[rule]), background=False)
    for i, value in enumerate([*rng.normal(300, 30, 4 * WINDOW), *rng.normal(330, 30, WINDOW)]):
        alerts(request(i), [Signal("latency_ms", float(value))])
    assert [a.rule for a in alerts.fired] == ["latency"]


def test_level_rules_mean_rate_p95_with_cooldown() -> None:
    rules = [
        AlertRule(name="invalid", signal="valid", statistic="rate", threshold=0.9,
                  direction="below", window_requests=50, min_sample=20, cooldown_s=30),
        AlertRule(name="slow", signal="latency_ms", statistic="p95", threshold=1000,
                  window_s=30, min_sample=10, cooldown_s=3600),
        AlertRule(name="negative", signal="enum:sentiment", statistic="rate", label="negative",
                  threshold=0.5, window_requests=20, min_sample=20, prompt="other"),
    ]  # fmt: skip
    alerts = AlertEngine(None, AlertSettings(rules=rules), background=False)
    for i in range(100):
        bad = i >= 40
        alerts(request(i), [Signal("valid", 0.0 if bad and i % 2 else 1.0),
                            Signal("latency_ms", 2000.0 if i >= 80 else 100.0),
                            Signal("enum:sentiment", label="negative")])  # fmt: skip
    fired = [(a.rule, a.at - T0) for a in alerts.fired]
    # the invalid rate drops below 0.9 a few requests after 40, then again after the cooldown
    assert [r for r, _ in fired].count("invalid") == 2
    assert [r for r, _ in fired].count("slow") == 1
    assert "negative" not in [r for r, _ in fired]  # another prompt's rule


def test_scheduled_drift_checks_read_the_store(engine: Engine) -> None:
    rng = np.random.default_rng(8)
    now = T0 + timedelta(days=8)
    rows = []
    for i, label in enumerate(labels(rng, 0.8, 700)):  # a week before the last day
        at = now - timedelta(days=7) + timedelta(minutes=14 * i)
        rows.append(_row(i, at, label))
    for i, label in enumerate(labels(rng, 0.4, 200)):  # the last day
        rows.append(_row(1000 + i, now - timedelta(hours=23) + timedelta(minutes=6 * i), label))
    add_signal_rows(engine, rows)
    rule = drift_rule(window_requests=None, window_s=86400, baseline_s=6 * 86400,
                      cooldown_s=86400)  # fmt: skip
    settings = AlertSettings(rules=[rule])
    (alert,) = run_drift_checks(engine, settings, now)
    assert alert.prompt == "triage"
    assert alert.delivered["log"]["ok"]
    assert run_drift_checks(engine, settings, now + timedelta(hours=1)) == []  # cooldown
    assert len(recent_alerts(engine)) == 1


def _row(i: int, at: datetime, label: str) -> SignalRow:
    return SignalRow(request_id=f"s{i}", at=at, prompt="triage", version="1.0.0", model="fake",
                     key_id=None, name="enum:sentiment", value=None, label=label)  # fmt: skip


def test_rules_are_checked_when_loaded() -> None:
    with pytest.raises(ValueError, match="exactly one of window_requests or window_s"):
        AlertRule(name="x", signal="valid", statistic="mean", threshold=1)
    with pytest.raises(ValueError, match="needs signal = 'drift:valid'"):
        AlertRule(name="x", signal="valid", statistic="psi", threshold=1, window_requests=10)
    with pytest.raises(ValueError, match="unknown sink"):
        AlertSettings(rules=[drift_rule(sinks=["pager"])])
    with pytest.raises(ValueError, match="http"):
        AlertSettings.model_validate({"sinks": [{"kind": "webhook", "name": "w",
                                                 "url": "file:///etc/passwd"}]})  # fmt: skip


def test_the_signal_worker_feeds_the_rules(engine: Engine) -> None:
    from tether.observe.signal_worker import SignalWorker
    from tether.store.signals import add_signals as store

    schema = {"type": "object", "properties": {"sentiment": {"enum": ["positive", "negative"]}}}
    rng = np.random.default_rng(4)
    alerts = AlertEngine(engine, AlertSettings(rules=[drift_rule(window_requests=100)]))
    worker = SignalWorker(lambda rows: store(engine, rows), listeners=[alerts])
    worker.start()
    try:
        values = labels(rng, 0.8, 500) + labels(rng, 0.4, 100)
        for i, label in enumerate(values):
            inp = request(i)
            worker.submit(SignalInput(**{**inp.__dict__, "output": {"sentiment": label},
                                         "schema": schema}))  # fmt: skip
        assert worker.flush(timeout=60)
    finally:
        worker.close()
        alerts.close()
    (alert,) = recent_alerts(engine)
    assert alert.signal == "drift:enum:sentiment"
    assert alert.at == request(599).at  # the end of the first shifted window


def test_the_schedule_is_idle_without_time_window_rules(engine: Engine) -> None:
    import asyncio

    from tether.observe.alerts import drift_check_loop

    # request-window rules are checked as signals arrive: nothing to schedule
    asyncio.run(asyncio.wait_for(drift_check_loop(engine, AlertSettings(rules=[drift_rule()])), 5))
