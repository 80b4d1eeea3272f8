"""Canaries: a prompt's test cases and listed reference requests run through the pipeline
(logged as canary.run, past the cache); when the model behind the prompt starts answering
wrongly, the canary alert reaches a webhook receiver on a loopback port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from tests.observe import test_alerts
from tests.observe.test_alerts import Receiver
from tether import Client, FakeProvider, Settings
from tether.cache.config import CacheSettings
from tether.observe import canaries as canaries_module
from tether.observe.alert_rules import AlertSettings
from tether.observe.canaries import (
    CANARY_ENDPOINT,
    CanaryMonitor,
    canary_cases,
    canary_loop,
    run_canaries,
)
from tether.observe.config import ObserveSettings
from tether.prompts.loader import parse_spec
from tether.providers.base import ProviderCall
from tether.store.alerts import recent_alerts
from tether.store.signals import signal_series
from tether.store.tables import requests

receiver = test_alerts.receiver  # the loopback webhook receiver

SPEC = """
name: triage
version: 1.0.0
model: fake
messages:
  - {role: user, content: "Route this ticket: {{ ticket }}"}
output:
  schema:
    type: object
    properties:
      category: {enum: [billing, shipping, other]}
      confidence: {type: number}
    required: [category, confidence]
tests:
  - name: double charge
    inputs: {ticket: "I was charged twice"}
    assert:
      - {type: equals, field: category, value: billing}
  - name: late parcel
    inputs: {ticket: "My parcel is late"}
    assert:
      - {type: equals, field: category, value: shipping}
"""


@dataclass
class Model:
    """A fake model behind the prompt that answers right until it is broken."""

    broken: bool = False

    def __call__(self, call: ProviderCall) -> str:
        text = call.messages[-1].content
        right = "billing" if "charged" in text else "shipping" if "parcel" in text else "other"
        category = "other" if self.broken else right
        return json.dumps({"category": category, "confidence": 0.9})


def alert_settings(**fields: Any) -> AlertSettings:
    return AlertSettings.model_validate(fields)


def with_alerts(settings: Settings, alerts: AlertSettings, **more: Any) -> Settings:
    observe = ObserveSettings(evasive_embedder="none", alerts=alerts)
    return settings.model_copy(update={"observe": observe, **more})


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
def client(settings: Settings, model: Model) -> Iterator[Client]:
    with Client(settings, providers={"fake": FakeProvider(respond=model)}) as c:
        loaded = parse_spec(SPEC, source_name="triage.yaml")
        c.registry.push(loaded.spec, source=loaded.source, author="test", message="")
        yield c


def webhook(receiver: Receiver) -> dict[str, Any]:
    return {"kind": "webhook", "name": "ops", "url": receiver.url, "backoff_s": 0,
            "timeout_s": 2, "retries": 0}  # fmt: skip


def db(settings: Settings) -> Engine:
    return create_engine(settings.database)


def test_the_test_cases_pass_and_are_logged_as_canary_runs(
    client: Client, settings: Settings
) -> None:
    alerts = alert_settings(canary={"prompts": ["triage"]})
    results = run_canaries(client, alerts)
    assert [(r.canary, r.passed, r.why) for r in results] == [
        ("double charge", True, ""),
        ("late parcel", True, ""),
    ]
    assert {(r.prompt, r.version, r.source) for r in results} == {("triage", "1.0.0", "test")}
    client.close()
    engine = db(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(requests.c.id, requests.c.endpoint)).all()
        assert {row.endpoint for row in rows} == {CANARY_ENDPOINT}
        assert {row.id for row in rows} == {r.request_id for r in results}
        verdicts = signal_series(engine, prompt="triage", version="1.0.0", name="canary")
        assert [p.value for p in verdicts] == [1.0, 1.0]
        assert recent_alerts(engine) == []
    finally:
        engine.dispose()


def test_a_broken_model_fires_the_canary_alert_to_the_webhook(
    client: Client, model: Model, receiver: Receiver, settings: Settings
) -> None:
    alerts = alert_settings(canary={"prompts": ["triage"]}, sinks=[webhook(receiver)])
    assert all(r.passed for r in run_canaries(client, alerts))
    assert receiver.received == []
    model.broken = True  # the model behind the prompt starts answering wrongly
    results = run_canaries(client, alerts)
    assert not any(r.passed for r in results)
    assert "billing" in results[0].why
    (body,) = receiver.received
    assert body["kind"] == "tether.alert"
    assert (body["rule"], body["prompt"], body["version"], body["signal"]) == (
        "canary", "triage", "1.0.0", "canary",
    )  # fmt: skip
    assert body["value"] == 0.5  # 2 of the latest 4 runs passed
    assert body["threshold"] == 1.0
    assert "double charge" in body["message"]
    engine = db(settings)
    try:
        (stored,) = recent_alerts(engine, rule="canary")
        assert stored.delivered == {"ops": {"ok": True, "attempts": 1, "status": 200}}
    finally:
        engine.dispose()
    run_canaries(client, alerts)  # still failing: quiet during the cooldown
    assert len(receiver.received) == 1


def test_listed_canaries_and_a_pass_rate_threshold(
    client: Client, model: Model, receiver: Receiver
) -> None:
    alerts = alert_settings(
        canary={"window": 4, "min_pass_rate": 0.5},
        canaries=[{"prompt": "triage", "name": "refund", "inputs": {"ticket": "charged twice"},
                   "expect": [{"type": "equals", "field": "category", "value": "billing"}]}],
        sinks=[webhook(receiver)],
    )  # fmt: skip
    (case,) = canary_cases(client.runtime, alerts)
    assert (case.name, case.source, case.version) == ("refund", "settings", "1.0.0")
    for _ in range(3):
        run_canaries(client, alerts)
    model.broken = True
    run_canaries(client, alerts)  # 3 of the latest 4 passed: above the threshold
    assert receiver.received == []
    run_canaries(client, alerts)
    run_canaries(client, alerts)  # 1 of 4 passed
    (body,) = receiver.received
    assert body["value"] == 0.25


def test_canaries_are_never_served_from_the_cache(settings: Settings, model: Model) -> None:
    provider = FakeProvider(respond=model)
    cached = settings.model_copy(update={"cache": CacheSettings(mode="exact")})
    with Client(cached, providers={"fake": provider}) as client:
        loaded = parse_spec(SPEC, source_name="triage.yaml")
        client.registry.push(loaded.spec, source=loaded.source, author="test", message="")
        alerts = alert_settings()
        run_canaries(client, alerts, "triage", alert=False)
        run_canaries(client, alerts, "triage", alert=False)
    assert len(provider.calls) == 4


def test_a_prompt_without_canaries_is_an_error(client: Client) -> None:
    from tether.errors import TetherError

    bare = SPEC.replace("name: triage", "name: bare").split("tests:")[0]
    loaded = parse_spec(bare, source_name="bare.yaml")
    client.registry.push(loaded.spec, source=loaded.source, author="test", message="")
    with pytest.raises(TetherError, match="no canaries"):
        run_canaries(client, alert_settings(), "bare")


def test_without_recorded_requests_the_monitor_counts_its_own_runs(
    settings: Settings, model: Model, receiver: Receiver
) -> None:
    quiet = settings.model_copy(
        update={"calls": settings.calls.model_copy(update={"record_requests": False})}
    )
    alerts = alert_settings(canary={"prompts": ["triage"], "window": 2, "min_pass_rate": 0.5},
                            sinks=[webhook(receiver)])  # fmt: skip
    with Client(quiet, providers={"fake": FakeProvider(respond=model)}) as client:
        loaded = parse_spec(SPEC, source_name="triage.yaml")
        client.registry.push(loaded.spec, source=loaded.source, author="test", message="")
        monitor = CanaryMonitor(client.runtime, alerts)
        run_canaries(client, alerts, monitor=monitor)
        model.broken = True
        run_canaries(client, alerts, monitor=monitor)
    (body,) = receiver.received
    assert body["value"] == 0.0


def test_the_loop_runs_on_its_interval_and_idles_without_canaries(
    client: Client, monkeypatch: pytest.MonkeyPatch, receiver: Receiver, model: Model
) -> None:
    asyncio.run(asyncio.wait_for(canary_loop(client, alert_settings()), 1))  # returns at once
    rounds: list[float] = []

    async def sleep(seconds: float) -> None:
        rounds.append(seconds)
        if len(rounds) > 2:
            raise asyncio.CancelledError

    monkeypatch.setattr(canaries_module, "pause", sleep)
    model.broken = True
    alerts = alert_settings(canary={"prompts": ["triage"], "interval_s": 60},
                            sinks=[webhook(receiver)])  # fmt: skip
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(canary_loop(client, alerts))
    assert rounds == [60, 60, 60]
    assert len(receiver.received) == 1  # two failing rounds, one alert (cooldown)
