"""Prometheus metrics of finished requests: a scrape after requests through the pipeline,
parsed back with prometheus_client's own parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import TypeAdapter

from tests.asks import api_key, chat, observed
from tether import Client, FakeProvider, Settings
from tether.cache.config import CacheSettings
from tether.observe.metrics import OTHER, Metrics
from tether.pipeline.context import Ask
from tether.prompts.loader import parse_spec
from tether.routing.config import RouterSettings

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
SPEC = """
name: greet
version: 1.2.0
model: fake
messages:
  - {role: user, content: "Say hello to {{ who }}"}
"""


def _scrape(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> (labels, value) of every sample in a scrape."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    found = _scrape(metrics).get(name, [])
    return sum(v for have, v in found if labels.items() <= have.items())


def test_requests_tokens_cost_and_durations_are_counted(settings: Settings) -> None:
    metrics = Metrics.for_settings(settings)
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "two words")}) as c:
        for _ in range(3):
            observed(c, metrics, chat("one two three", key=api_key("key_a")))
        observed(c, metrics, chat("hi"))
    scrape = _scrape(metrics)
    (labels, count), *others = [s for s in scrape["tether_requests_total"] if s[0]["key"]]
    assert not others
    assert labels == {
        "endpoint": "chat.completions",
        "prompt": "",
        "version": "",
        "model": "fake",
        "key": "key_a",
        "status": "200",
    }
    assert count == 3
    assert _value(metrics, "tether_requests_total") == 4
    assert _value(metrics, "tether_tokens_total", key="key_a", direction="input") == 9
    assert _value(metrics, "tether_tokens_total", key="key_a", direction="output") == 6
    # $1 per million in, $2 out: 3 x (3 in + 2 out)
    expected = 3 * (3 * 1.0 + 2 * 2.0) / 1e6
    assert _value(metrics, "tether_cost_usd_total", key="key_a") == pytest.approx(expected)
    assert _value(metrics, "tether_request_duration_seconds_count", model="fake") == 4
    assert _value(metrics, "tether_request_duration_seconds_bucket", le="+Inf") == 4
    assert "tether_errors_total" not in scrape


def test_contracts_repairs_and_errors(settings: Settings) -> None:
    metrics = Metrics.for_settings(settings)
    fake = FakeProvider(["not json", '{"ok": true}', "no", "still no", "never"])
    with Client(settings, providers={"fake": fake}) as client:
        repaired = observed(client, metrics, chat("a", contract=client.contract(SCHEMA)))
        failed = observed(
            client, metrics, chat("b", contract=client.contract(SCHEMA), max_repairs=1)
        )
        missing = observed(client, metrics, chat("c", model="no-such-model"))
    assert repaired.error is None
    assert len(repaired.attempts) == 2
    assert failed.error is not None
    assert missing.error is not None
    assert _value(metrics, "tether_repairs_total", model="fake") == 2
    assert _value(metrics, "tether_schema_conformity_total", valid="true") == 1
    assert _value(metrics, "tether_schema_conformity_total", valid="false") == 1
    violation = type(failed.error).__name__
    assert _value(metrics, "tether_errors_total", error_type=violation, model="fake") == 1
    # a model name nobody configured is the caller's text: never a label value of its own
    assert _value(metrics, "tether_errors_total", model=OTHER) == 1
    assert _value(metrics, "tether_requests_total", status=str(missing.status)) == 1
    labels = {s[0]["model"] for s in _scrape(metrics)["tether_requests_total"]}
    assert "no-such-model" not in labels


def test_registered_prompts_carry_name_and_version(settings: Settings) -> None:
    metrics = Metrics.for_settings(settings)
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "hello")}) as c:
        loaded = parse_spec(SPEC, source_name="greet.yaml")
        c.registry.push(loaded.spec, source=loaded.source, author="test", message="")
        observed(c, metrics, Ask("prompts.run", prompt="greet", inputs={"who": "Ada"}))
        observed(c, metrics, Ask("prompts.run", prompt="made-up", inputs={}))
    assert _value(metrics, "tether_requests_total", prompt="greet", version="1.2.0") == 1
    prompts = {s[0]["prompt"] for s in _scrape(metrics)["tether_requests_total"]}
    assert prompts == {"greet", ""}  # the unknown name is not a label value


def test_cache_decisions_and_what_hits_saved(settings: Settings) -> None:
    cached = settings.model_copy(update={"cache": CacheSettings(mode="exact")})
    metrics = Metrics.for_settings(cached)
    with Client(cached, providers={"fake": FakeProvider(respond=lambda c: "an answer")}) as c:
        first = observed(c, metrics, chat("what is up"))
        observed(c, metrics, chat("what is up"))
        observed(c, metrics, chat("what is up", cache="off"))
    assert _value(metrics, "tether_cache_decisions_total", kind="miss") == 1
    assert _value(metrics, "tether_cache_decisions_total", kind="exact") == 1
    saved = _value(metrics, "tether_cache_saved_usd_total")
    assert saved == pytest.approx(first.result.cost_usd)
    assert saved > 0


def test_route_decisions(settings: Settings) -> None:
    router = TypeAdapter(RouterSettings).validate_python(
        {"policy": "rules", "default": "fake", "rules": [{"regex": "^hello", "answer": "hi!"}]}
    )
    routed = settings.model_copy(update={"routers": {"triage": router}})
    metrics = Metrics.for_settings(routed)
    with Client(routed, providers={"fake": FakeProvider(respond=lambda c: "ok")}) as client:
        observed(client, metrics, chat("hello there", model="router:triage"))
        observed(client, metrics, chat("something else", model="router:triage"))
    assert _value(metrics, "tether_route_decisions_total", router="triage", model="rule") == 1
    assert _value(metrics, "tether_route_decisions_total", router="triage", model="fake") == 1
    assert _value(metrics, "tether_requests_total", model="fake") == 1
    assert _value(metrics, "tether_requests_total", model="router:triage") == 1


def test_each_instance_keeps_its_own_counts(settings: Settings) -> None:
    one, two = Metrics.for_settings(settings), Metrics.for_settings(settings)
    with Client(settings, providers={"fake": FakeProvider(respond=lambda c: "x")}) as client:
        observed(client, one, chat("a"))
        observed(client, one, chat("b"))
        observed(client, two, chat("c"))
    assert _value(one, "tether_requests_total") == 2
    assert _value(two, "tether_requests_total") == 1
    assert one.content_type.startswith("text/plain")
