"""`GET /metrics` on a running gateway: admins only, a Prometheus scrape that counts the
requests made through the gateway, 404 while metrics are off."""

from __future__ import annotations

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tether.observe.metrics import Metrics
from tether.server.gateway import Gateway

from .conftest import LiveGateway


def _observe_with(gateway: Gateway, metrics: Metrics) -> None:
    """What settings with metrics on give a gateway: the runtime's `metrics`, one of the
    observers of every finished request."""
    runtime = gateway.runtime
    runtime.metrics = metrics  # type: ignore[attr-defined]
    runtime.observers.append(metrics)


@pytest.fixture
def metered(live: LiveGateway) -> LiveGateway:
    _observe_with(live.gateway, Metrics.for_settings(live.settings))
    return live


def _chat(live: LiveGateway, text: str, model: str = "fake") -> httpx2.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    headers = {"authorization": f"Bearer {live.key}"}
    return httpx2.post(f"{live.v1}/chat/completions", json=body, headers=headers, timeout=30)


def _scrape(live: LiveGateway) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx2.get(f"{live.url}/metrics", headers=live.admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_the_admin_token_is_required(metered: LiveGateway) -> None:
    url = f"{metered.url}/metrics"
    assert httpx2.get(url).status_code == 401
    as_key = {"authorization": f"Bearer {metered.key}"}  # a virtual key is no admin
    assert httpx2.get(url, headers=as_key).status_code == 401
    assert httpx2.get(url, headers=metered.admin).status_code == 200


def test_a_scrape_counts_the_gateways_requests(metered: LiveGateway) -> None:
    for text in ("one", "two"):
        assert _chat(metered, text).status_code == 200
    assert _chat(metered, "three", model="no-such-model").status_code == 404
    (key,) = metered.gateway.keys.list()
    scrape = _scrape(metered)
    answered = [
        (labels, value)
        for labels, value in scrape["tether_requests_total"]
        if labels["status"] == "200"
    ]
    assert answered == [
        (
            {
                "endpoint": "chat.completions",
                "prompt": "",
                "version": "",
                "model": "fake",
                "key": key.id,
                "status": "200",
            },
            2.0,
        )
    ]
    errors = scrape["tether_errors_total"]
    failed = [(labels["error_type"], labels["model"], v) for labels, v in errors]
    assert failed == [("ModelNotFound", "other", 1.0)]  # the caller's name is no label value
    tokens = {labels["direction"]: v for labels, v in scrape["tether_tokens_total"]}
    assert tokens["input"] > 0
    assert tokens["output"] > 0
    assert key.id in {labels["key"] for labels, _ in scrape["tether_cost_usd_total"]}
    assert metered.key not in _text(metered)  # a key's secret is never a label value


def _text(live: LiveGateway) -> str:
    return httpx2.get(f"{live.url}/metrics", headers=live.admin).text


def test_not_found_while_metrics_are_off(live: LiveGateway) -> None:
    live.gateway.runtime.metrics = None  # type: ignore[attr-defined]
    response = httpx2.get(f"{live.url}/metrics", headers=live.admin)
    assert response.status_code == 404
    assert "metrics are off" in response.text
    assert httpx2.get(f"{live.url}/metrics").status_code == 401  # still admins only
