"""A webhook's URL (it may carry a token) reaches no log at any level: not the HTTP library's
request lines while an alert is delivered, not a failure's message, not a sink's traceback;
the library still logs other requests."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx2
import pytest

from tether.observe.alert_rules import WebhookSink
from tether.observe.alert_sinks import WebhookAlertSink, deliver, url_secrets
from tether.redact import REDACTED
from tether.store.alerts import AlertRow

PATH_TOKEN = "T0KEN-in-the-path-51c2"
QUERY_TOKEN = "q-secret-93ab"
BEARER = "bearer-secret-6e1f"


@pytest.fixture
def base_url() -> Iterator[str]:
    """A receiver on a loopback port: 200 to every POST and GET."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self._ok()

        def do_GET(self) -> None:
            self._ok()

        def _ok(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def secret_url(base: str) -> str:
    return f"{base}/hooks/{PATH_TOKEN}?token={QUERY_TOKEN}"


def sink(url: str, client: httpx2.Client | None = None, **options: object) -> WebhookAlertSink:
    settings = WebhookSink.model_validate({"kind": "webhook", "name": "ops", "url": url,
                                           "token_env": "HOOK", "backoff_s": 0, "timeout_s": 2,
                                           **options})  # fmt: skip
    return WebhookAlertSink(settings, environ={"HOOK": BEARER}, client=client)


def unused_port() -> int:
    with socket.socket() as sock:  # nobody listens once it is closed
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alert() -> AlertRow:
    at = datetime(2026, 11, 30, 12, tzinfo=UTC)
    return AlertRow(at, "invalid", "triage", "1.0.0", "valid", 0.5, 0.9, "valid rate = 0.5")


def assert_no_secret(text: str) -> None:
    for secret in (PATH_TOKEN, QUERY_TOKEN, BEARER):
        assert secret not in text


def test_a_delivery_leaves_no_url_in_the_log(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = secret_url(base_url)
    with caplog.at_level(logging.DEBUG):
        assert sink(url).send(alert()).ok
    assert url not in caplog.text
    assert_no_secret(caplog.text)
    # the filter is for deliveries only: the library still logs other requests
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        httpx2.get(f"{base_url}/other", timeout=5)
    assert "HTTP Request: GET" in caplog.text


def test_a_failed_delivery_leaves_no_url_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    base = f"http://127.0.0.1:{unused_port()}"
    with caplog.at_level(logging.DEBUG):
        delivery = sink(secret_url(base), retries=1).send(alert())
    assert (delivery.ok, delivery.attempts, delivery.error) == (False, 2, "ConnectError")
    assert "webhook ops failed after 2 tries" in caplog.text
    assert_no_secret(caplog.text)


def test_a_sinks_traceback_is_redacted(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    url = secret_url(base_url)

    def explode(request: httpx2.Request) -> httpx2.Response:
        raise RuntimeError(f"cannot send to {request.url} with {request.headers['authorization']}")

    broken = sink(url, httpx2.Client(transport=httpx2.MockTransport(explode)))
    with caplog.at_level(logging.DEBUG):
        outcomes = deliver({"ops": broken}, alert(), None)
    assert outcomes["ops"] == {"ok": False, "attempts": 1, "error": "RuntimeError"}
    assert "RuntimeError: cannot send to" in caplog.text
    assert REDACTED in caplog.text
    assert_no_secret(caplog.text)


def test_every_form_of_the_url_is_a_secret() -> None:
    found = url_secrets("https://user:pw@hooks.example.com/t/abc?k=v")
    assert "https://user:pw@hooks.example.com/t/abc?k=v" in found
    assert "/t/abc?k=v" in found
    assert "user:pw" in found
    assert found == sorted(found, key=len, reverse=True)
    assert url_secrets("https://hooks.example.com") == ["https://hooks.example.com"]
