"""The background writers' counters on /metrics: the signal worker's queue, writes and losses
and the request log's queue, spool and losses, read from their stats() at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server.conftest import LiveGateway, gateway_settings, live_gateway
from tether.observe.metrics import worker_exposition


class Counts:
    def __init__(self, **stats: int) -> None:
        self.values = stats

    def stats(self) -> dict[str, int]:
        return dict(self.values)


def parse(text: str) -> dict[str, tuple[str, float]]:
    """Each sample's name with its family's type and value (these metrics take no labels)."""
    out: dict[str, tuple[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.endswith("_created"):
                out[sample.name] = (family.type, sample.value)
    return out


def test_the_writers_counters_are_read_when_scraped() -> None:
    worker = Counts(pending=3, dropped=2, written=40, lost=5)
    log = Counts(pending=7, spooled=11, quarantined=1, dropped=4)
    first = parse(worker_exposition(worker, log).decode())
    assert first == {
        "tether_signal_queue_pending": ("gauge", 3.0),
        "tether_signals_written_total": ("counter", 40.0),
        "tether_signals_dropped_total": ("counter", 2.0),
        "tether_signals_lost_total": ("counter", 5.0),
        "tether_request_log_pending": ("gauge", 7.0),
        "tether_request_log_spooled": ("gauge", 11.0),
        "tether_request_log_quarantined_total": ("counter", 1.0),
        "tether_request_log_dropped_total": ("counter", 4.0),
    }
    worker.values["dropped"] = 9  # read again at the next scrape, not cached
    assert parse(worker_exposition(worker, log).decode())["tether_signals_dropped_total"] == (
        "counter",
        9.0,
    )


def test_a_writer_not_running_is_left_out() -> None:
    found = parse(worker_exposition(None, Counts(pending=0, spooled=0)).decode())
    assert not any(name.startswith("tether_signal") for name in found)
    assert found["tether_request_log_dropped_total"] == ("counter", 0.0)  # a missing key is 0
    assert worker_exposition(None, None) == b""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    with live_gateway(gateway_settings(tmp_path)) as running:
        yield running


def test_a_scrape_of_the_gateway_shows_its_writers(live: LiveGateway) -> None:
    headers = {"authorization": f"Bearer {live.key}"}
    for text in ("one", "two", "three"):
        body = {"model": "fake", "messages": [{"role": "user", "content": text}]}
        answer = httpx2.post(f"{live.v1}/chat/completions", json=body, headers=headers, timeout=30)
        assert answer.status_code == 200
    runtime = live.gateway.runtime
    log, worker = runtime.opened_log, runtime.signal_worker
    assert log is not None
    assert worker is not None
    assert log.flush()
    assert worker.flush(10)
    response = httpx2.get(f"{live.url}/metrics", headers=live.admin, timeout=30)
    assert response.status_code == 200
    found = parse(response.text)
    signals, requests = worker.stats(), log.stats()
    assert signals["written"] + signals["lost"] > 0  # the three requests' signals went somewhere
    assert {name: value for name, (_, value) in found.items() if "signal" in name} == {
        "tether_signal_queue_pending": signals["pending"],
        "tether_signals_written_total": signals["written"],
        "tether_signals_dropped_total": signals["dropped"],
        "tether_signals_lost_total": signals["lost"],
    }
    assert found["tether_request_log_pending"][1] == requests["pending"] == 0
    assert found["tether_request_log_spooled"][1] == requests["spooled"]
    assert found["tether_request_log_dropped_total"][1] == requests["dropped"]
    assert "tether_requests_total" in found  # the request metrics are still there
