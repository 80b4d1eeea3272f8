"""Calibration of the confidence field: ECE on hand-made data, the reliability diagram, pairs from
feedback and canary verdicts, and the calibration alert: an over-confident model fires it at the
webhook, a calibrated one does not."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from tests.observe import test_alerts
from tests.observe.test_alerts import Receiver
from tether import Client, FakeProvider, Settings
from tether.observe.alert_rules import AlertSettings
from tether.observe.calibration_error import (
    calibration_of_prompt,
    check_calibration,
    expected_calibration_error,
    reliability,
    reliability_plot,
)
from tether.observe.canaries import run_canaries
from tether.observe.config import ObserveSettings
from tether.pipeline.context import Ask, Context
from tether.prompts.loader import parse_spec
from tether.providers.base import ProviderCall
from tether.store.alerts import recent_alerts
from tether.store.feedback import add_feedback

receiver = test_alerts.receiver  # the loopback webhook receiver

SPEC = """
name: triage
version: 1.0.0
model: fake
messages:
  - {role: user, content: "Route ticket {{ n }}: {{ ticket }}"}
output:
  schema:
    type: object
    properties:
      category: {enum: [billing, shipping]}
      confidence: {type: number}
    required: [category, confidence]
tests:
  - name: double charge
    inputs: {n: 0, ticket: "I was charged twice"}
    assert:
      - {type: equals, field: category, value: billing}
"""

# -- ECE on hand-made data ----------------------------------------------------------------------


def test_a_perfectly_calibrated_sample_has_no_error() -> None:
    confidences = [0.25] * 4 + [0.75] * 4
    correct = [True, False, False, False, True, True, True, False]
    assert expected_calibration_error(confidences, correct, bins=4) == pytest.approx(0.0)


def test_the_error_is_the_bin_weighted_gap() -> None:
    # bin [0.9, 1.0): 4 answers at 0.95, 2 right -> gap 0.45; bin [0.1, 0.2): 2 at 0.15,
    # 1 right -> gap 0.35. ECE = 4/6 * 0.45 + 2/6 * 0.35
    confidences = [0.95] * 4 + [0.15] * 2
    correct = [True, True, False, False, True, False]
    result = reliability(confidences, correct, bins=10)
    assert result.total == 6
    high, low = result.bins[9], result.bins[1]
    assert (high.count, high.confidence, high.accuracy) == (4, pytest.approx(0.95), 0.5)
    assert (low.count, low.confidence, low.accuracy) == (2, pytest.approx(0.15), 0.5)
    assert [b.count for b in result.bins if b not in (high, low)] == [0] * 8
    assert result.ece == pytest.approx(4 / 6 * 0.45 + 2 / 6 * 0.35)
    assert result.accuracy == pytest.approx(0.5)


def test_bin_edges_and_bad_input() -> None:
    result = reliability([0.0, 0.1, 1.0], [False, True, True], bins=10)
    assert [result.bins[i].count for i in (0, 1, 9)] == [1, 1, 1]  # 1.0 is in the last bin
    assert reliability([], [], bins=5).ece == 0.0
    with pytest.raises(ValueError, match="one verdict each"):
        reliability([0.5], [True, False])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability([85.0], [True])
    with pytest.raises(ValueError, match="bins"):
        reliability([0.5], [True], bins=0)


def test_the_reliability_diagram_is_a_png(tmp_path: Path) -> None:
    result = reliability([0.95] * 10 + [0.2] * 10, [i % 2 == 0 for i in range(20)])
    path = reliability_plot(result, tmp_path / "out" / "reliability.png", title="triage")
    assert path.read_bytes().startswith(b"\x89PNG")


# -- pairs from the store and the alert ---------------------------------------------------------

Confident = Callable[[int], tuple[bool, float]]  # call number -> (answers right, confidence)


def over_confident(n: int) -> tuple[bool, float]:
    return n % 2 == 0, 0.95  # right half the time, says 0.95


def calibrated(n: int) -> tuple[bool, float]:
    # confidence 0.9 right 9 times in 10, 0.3 right 3 times in 10
    if n % 2 == 0:
        return (n // 2) % 10 != 0, 0.9
    return (n // 2) % 10 < 3, 0.3


def provider(behaviour: Confident) -> FakeProvider:
    def answer(call: ProviderCall) -> str:
        text = call.messages[-1].content
        n = int(text.split()[2].rstrip(":"))
        truth = "billing" if "charged" in text else "shipping"
        right, confidence = behaviour(n)
        category = truth if right else ("shipping" if truth == "billing" else "billing")
        return json.dumps({"category": category, "confidence": confidence})

    return FakeProvider(respond=answer)


def observed(settings: Settings, alerts: AlertSettings | None = None, **observe: Any) -> Settings:
    fields = {"evasive_embedder": "none", "alerts": alerts or AlertSettings(), **observe}
    return settings.model_copy(update={"observe": ObserveSettings(**fields)})


def serve(settings: Settings, behaviour: Confident, count: int = 100) -> None:
    """`count` answers of the prompt, each with feedback saying whether it was right."""
    graded: list[tuple[str, bool]] = []
    with Client(settings, providers={"fake": provider(behaviour)}) as client:
        loaded = parse_spec(SPEC, source_name="triage.yaml")
        client.registry.push(loaded.spec, source=loaded.source, author="test", message="")
        for n in range(count):
            ticket = "I was charged twice" if n % 3 else "Where is my parcel"
            ask = Ask("library.run", prompt="triage", inputs={"n": n, "ticket": ticket})
            ctx = client.runtime.run_sync(Context(ask))
            truth = "billing" if "charged" in ticket else "shipping"
            graded.append((ctx.request_id, ctx.result.output["category"] == truth))
    engine = create_engine(settings.database)
    try:
        for request_id, right in graded:
            add_feedback(engine, request_id, 1.0 if right else 0.0, None, None, None)
    finally:
        engine.dispose()


def alert_settings(receiver: Receiver) -> AlertSettings:
    return AlertSettings.model_validate({
        "calibration": {"max_ece": 0.15, "min_sample": 50},
        "sinks": [{"kind": "webhook", "name": "ops", "url": receiver.url, "backoff_s": 0,
                   "retries": 0}],
    })  # fmt: skip


NOW = datetime.now(UTC) + timedelta(minutes=1)


def test_an_over_confident_model_fires_the_calibration_alert(
    settings: Settings, receiver: Receiver
) -> None:
    alerts = alert_settings(receiver)
    settings = observed(settings, alerts)
    serve(settings, over_confident)
    engine = create_engine(settings.database)
    try:
        sample = calibration_of_prompt(engine, "triage", "1.0.0", NOW - timedelta(days=1))
        assert (sample.size, sample.from_feedback, sample.from_canaries) == (100, 100, 0)
        assert sample.reliability().ece == pytest.approx(0.45)
        (fired,) = check_calibration(engine, alerts, NOW)
        assert (fired.rule, fired.prompt, fired.version) == ("calibration", "triage", "1.0.0")
        assert fired.value == pytest.approx(0.45)
        (body,) = receiver.received
        assert (body["rule"], body["signal"], body["threshold"]) == ("calibration", "ece", 0.15)
        assert "100 answers" in body["message"]
        assert [a.rule for a in recent_alerts(engine)] == ["calibration"]
        assert check_calibration(engine, alerts, NOW + timedelta(hours=1)) == []  # cooldown
    finally:
        engine.dispose()


def test_a_calibrated_model_does_not(settings: Settings, receiver: Receiver) -> None:
    alerts = alert_settings(receiver)
    settings = observed(settings, alerts)
    serve(settings, calibrated)
    engine = create_engine(settings.database)
    try:
        sample = calibration_of_prompt(engine, "triage", None, None)
        assert sample.size == 100
        assert sample.reliability().ece < 0.05
        assert check_calibration(engine, alerts, NOW) == []
        assert receiver.received == []
    finally:
        engine.dispose()


def test_too_few_answers_or_no_section_raise_nothing(
    settings: Settings, receiver: Receiver
) -> None:
    alerts = alert_settings(receiver)
    settings = observed(settings, alerts)
    serve(settings, over_confident, count=20)
    engine = create_engine(settings.database)
    try:
        assert check_calibration(engine, alerts, NOW) == []  # 20 < min_sample
        assert check_calibration(engine, AlertSettings(), NOW) == []
    finally:
        engine.dispose()


def test_without_signals_the_confidence_is_read_from_the_logged_output(
    settings: Settings,
) -> None:
    settings = observed(settings, signals=False)
    serve(settings, over_confident, count=10)
    engine = create_engine(settings.database)
    try:
        sample = calibration_of_prompt(engine, "triage", "1.0.0", None)
        assert sample.size == 10
        assert set(sample.confidences) == {0.95}
    finally:
        engine.dispose()


def test_canary_verdicts_are_truth_too(settings: Settings) -> None:
    settings = observed(settings)
    with Client(settings, providers={"fake": provider(over_confident)}) as client:
        loaded = parse_spec(SPEC, source_name="triage.yaml")
        client.registry.push(loaded.spec, source=loaded.source, author="test", message="")
        for _ in range(3):
            run_canaries(client, AlertSettings(), "triage", alert=False)
    engine = create_engine(settings.database)
    try:
        sample = calibration_of_prompt(engine, "triage", "1.0.0", None)
        assert (sample.size, sample.from_canaries) == (3, 3)
        assert sample.correct == [True] * 3  # case n = 0: the fake answers it right
    finally:
        engine.dispose()
