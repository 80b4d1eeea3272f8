"""Alert sinks against a real HTTP receiver on a loopback port: the alert arrives as JSON with
its bearer token; a failing receiver is retried, then recorded as failed without raising; the
token never reaches the log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tether.observe.alert_rules import AlertRule, AlertSettings, WebhookSink
from tether.observe.alert_sinks import WebhookAlertSink, build_sinks, deliver
from tether.observe.alerts import AlertEngine
from tether.observe.signals import SignalInput
from tether.store.alerts import AlertRow, recent_alerts
from tether.store.engine import open_database
from tether.store.migrations import migrate
from tether.store.signals import Signal

TOKEN = "hook-secret-7d2e9"
AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


@dataclass
class Receiver:
    url: str
    statuses: list[int]  # answered in turn; the last one repeats
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver(url="", statuses=[200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            box.received.append(json.loads(body))
            box.headers.append({k.lower(): v for k, v in self.headers.items()})
            status = box.statuses[min(len(box.received), len(box.statuses)) - 1]
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box
    server.shutdown()
    server.server_close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    db = open_database(f"sqlite:///{tmp_path / 'tether.db'}")
    migrate(db)
    yield db
    db.dispose()


def alert(rule: str = "invalid") -> AlertRow:
    return AlertRow(AT, rule, "triage", "1.0.0", "valid", 0.5, 0.9, "valid rate = 0.5")


def webhook(url: str, **fields: Any) -> WebhookSink:
    return WebhookSink.model_validate({"kind": "webhook", "name": "ops", "url": url,
                                       "backoff_s": 0, "timeout_s": 2, **fields})  # fmt: skip


def test_the_receiver_gets_the_alert_as_json_with_its_token(receiver: Receiver) -> None:
    sink = WebhookAlertSink(webhook(receiver.url, token_env="HOOK_TOKEN"),
                            environ={"HOOK_TOKEN": TOKEN})  # fmt: skip
    delivery = sink.send(alert())
    assert delivery.ok
    assert delivery.attempts == 1
    assert delivery.status == 200
    (body,) = receiver.received
    assert body["kind"] == "tether.alert"
    assert {k: body[k] for k in ("rule", "prompt", "version", "signal", "value", "threshold")} == {
        "rule": "invalid", "prompt": "triage", "version": "1.0.0", "signal": "valid",
        "value": 0.5, "threshold": 0.9,
    }  # fmt: skip
    assert body["at"] == AT.isoformat()
    assert "delivered" not in body
    assert receiver.headers[0]["authorization"] == f"Bearer {TOKEN}"


def test_a_failing_receiver_is_retried_then_recorded_as_failed(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500]
    sink = WebhookAlertSink(webhook(receiver.url, retries=2, token_env="HOOK_TOKEN"),
                            environ={"HOOK_TOKEN": TOKEN})  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        delivery = sink.send(alert())
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 3, 500)
    assert delivery.error == "HTTP 500"
    assert len(receiver.received) == 3
    assert TOKEN not in caplog.text  # at any level, from any logger
    ours = [r.getMessage() for r in caplog.records if r.name == "tether.alerts"]
    assert ours
    assert not any(receiver.url in line for line in ours)


def test_a_receiver_that_recovers_gets_the_alert(receiver: Receiver) -> None:
    receiver.statuses = [503, 200]
    delivery = WebhookAlertSink(webhook(receiver.url, retries=2)).send(alert())
    assert (delivery.ok, delivery.attempts) == (True, 2)


def test_a_refusal_is_not_retried(receiver: Receiver) -> None:
    receiver.statuses = [400]
    delivery = WebhookAlertSink(webhook(receiver.url, retries=3)).send(alert())
    assert (delivery.ok, delivery.attempts, delivery.error) == (False, 1, "HTTP 400")


def test_an_unreachable_receiver_is_a_failed_delivery() -> None:
    import socket

    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    delivery = WebhookAlertSink(webhook(f"http://127.0.0.1:{port}/", retries=1)).send(alert())
    assert (delivery.ok, delivery.attempts) == (False, 2)
    assert delivery.error == "ConnectError"


def test_a_missing_token_variable_sends_nothing(receiver: Receiver) -> None:
    sink = WebhookAlertSink(webhook(receiver.url, token_env="HOOK_TOKEN"), environ={})
    delivery = sink.send(alert())
    assert not delivery.ok
    assert delivery.error is not None
    assert "HOOK_TOKEN" in delivery.error
    assert receiver.received == []


def test_one_failing_sink_leaves_the_others(receiver: Receiver) -> None:
    receiver.statuses = [500]
    settings = AlertSettings.model_validate({"sinks": [
        {"kind": "log"},
        {"kind": "webhook", "name": "ops", "url": receiver.url, "retries": 1, "backoff_s": 0},
    ]})  # fmt: skip
    outcomes = deliver(build_sinks(settings), alert(), None)
    assert outcomes["log"] == {"ok": True, "attempts": 1}
    assert outcomes["ops"] == {"ok": False, "attempts": 2, "status": 500, "error": "HTTP 500"}
    assert deliver(build_sinks(settings), alert(), ["pager"])["pager"]["error"] == "no such sink"


def test_a_rule_fires_to_the_webhook_and_stores_the_outcome(
    receiver: Receiver, engine: Engine
) -> None:
    receiver.statuses = [500, 200]
    rule = AlertRule(name="invalid", signal="valid", statistic="rate", threshold=0.9,
                     direction="below", window_requests=10, min_sample=10,
                     sinks=["ops"])  # fmt: skip
    settings = AlertSettings(rules=[rule], sinks=[webhook(receiver.url, retries=2)])
    alerts = AlertEngine(engine, settings)  # delivered in the background
    for i in range(10):
        inp = SignalInput(request_id=f"r{i}", at=AT, prompt="triage", version="1.0.0",
                          model="fake", key_id=None, latency_s=0.1, input_tokens=1,
                          output_tokens=1, cost_usd=0.0, status=200, valid=False,
                          repairs=0)  # fmt: skip
        alerts(inp, [Signal("valid", 0.0)])
    alerts.close()
    (stored,) = recent_alerts(engine)
    assert stored.rule == "invalid"
    assert stored.value == 0.0
    assert stored.delivered == {"ops": {"ok": True, "attempts": 2, "status": 200}}
    assert len(receiver.received) == 2


def test_the_documented_settings_load() -> None:
    import re
    import tomllib

    from tether.observe import alert_rules

    assert alert_rules.__doc__ is not None
    example = re.search(r"```toml\n(.*?)```", alert_rules.__doc__, re.S)
    assert example
    settings = AlertSettings.model_validate(tomllib.loads(example.group(1))["observe"]["alerts"])
    (rule,) = settings.rules
    assert rule.is_drift
    assert rule.fires_below
    assert rule.watched == "enum:sentiment"
    assert [s.name for s in settings.sinks] == ["ops"]


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_scheduled_checks_run_on_their_own_lowest_priority_thread() -> None:
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    from tether.observe.alerts import every

    seen: list[tuple[str, int]] = []

    def check() -> None:
        seen.append((threading.current_thread().name,
                     os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))  # fmt: skip
        if len(seen) == 2:
            raise RuntimeError("a failed round")  # logged; the next round still runs

    async def scenario() -> None:
        task = asyncio.create_task(every(0.01, check, "drift check"))
        while len(seen) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert {name.split("_")[0] for name, _ in seen} == {"tether-drift-check"}
    assert {nice for _, nice in seen} == {19}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # unchanged
