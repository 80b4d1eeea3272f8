"""Admin access against the attacks that broke it: a reverse proxy that makes every client a
loopback client, DNS rebinding, cross-site form posts, a cookie that held the token, unthrottled
guessing. Each runs against a real gateway on uvicorn."""

from __future__ import annotations

import http.client
import os
import socket
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.server.conftest import ADMIN_TOKEN, LiveGateway, gateway_settings, live_gateway
from tether.errors import ConfigError
from tether.server.admin_token import load_or_create
from tether.server.auth import LoginThrottle, Sessions, TrustedHosts, host_name

JSON = {"content-type": "application/json"}
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def key_names(live: LiveGateway) -> list[str]:
    return sorted(k.name for k in live.gateway.keys.list())


# -- a reverse proxy on the same host ------------------------------------------------------------


class ReverseProxy(ThreadingHTTPServer):
    """What nginx's `proxy_pass http://127.0.0.1:PORT` with `proxy_set_header Host $host` and
    `X-Real-IP $remote_addr` does: the gateway sees every client as 127.0.0.1."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "", parts.port or 80)
        super().__init__(("127.0.0.1", 0), _Forward)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}


class _Forward(BaseHTTPRequestHandler):
    server: ReverseProxy

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["X-Real-IP"] = self.client_address[0]
        headers["X-Forwarded-For"] = self.client_address[0]
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        self.send_response(reply.status)
        for name, value in reply.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    """A gateway with the tests' admin token."""
    with live_gateway(gateway_settings(tmp_path)) as running:
        yield running


@pytest.fixture
def untokened(tmp_path: Path) -> Iterator[LiveGateway]:
    """A gateway with no admin token configured."""
    with live_gateway(gateway_settings(tmp_path, admin_token=None)) as running:
        yield running


def test_no_token_means_no_admin_even_through_a_local_proxy(untokened: LiveGateway) -> None:
    proxy = ReverseProxy(untokened.url)
    try:
        for base in (proxy.url, untokened.url):  # through the proxy, and from loopback itself
            listed = httpx2.get(f"{base}/admin/keys", timeout=30)
            assert listed.status_code == 401, base
            error = listed.json()["error"]
            assert error["code"] == "admin_required"
            assert "TETHER_ADMIN_TOKEN" in error["message"]  # how to set one
            created = httpx2.post(
                f"{base}/admin/keys", json={"name": "pwned"}, headers=JSON, timeout=30
            )
            assert created.status_code == 401
            assert "secret" not in created.text
            moved = httpx2.post(
                f"{base}/admin/prompts/feedback-sentiment/labels",
                json={"label": "production", "version": "1.0.0"},
                timeout=30,
            )
            assert moved.status_code == 401
            page = httpx2.get(f"{base}/dashboard", timeout=30)
            assert page.status_code == 403
            assert "TETHER_ADMIN_TOKEN" in page.text
            assert 'name="token"' not in page.text
        # the proxy does forward: an ordinary call through it works
        models = httpx2.get(
            f"{proxy.url}/v1/models",
            headers={"authorization": f"Bearer {untokened.key}"},
            timeout=30,
        )
        assert models.status_code == 200
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert key_names(untokened) == ["test"]  # no key was created


# -- DNS rebinding -------------------------------------------------------------------------------


def test_foreign_host_header_is_refused_everywhere(live: LiveGateway) -> None:
    evil = {"host": "evil.example"}
    requests = [
        ("/v1/models", {"authorization": f"Bearer {live.key}"}),
        ("/admin/keys", live.admin),
        ("/dashboard", live.admin),
        ("/healthz", {}),
    ]
    for path, headers in requests:
        response = httpx2.get(f"{live.url}{path}", headers={**headers, **evil}, timeout=30)
        assert response.status_code == 400, path
        assert response.json()["error"]["code"] == "untrusted_host"
        assert response.json()["error"]["type"] == "invalid_request_error"
        allowed = httpx2.get(f"{live.url}{path}", headers=headers, timeout=30)
        assert allowed.status_code == 200, path
    created = httpx2.post(
        f"{live.url}/admin/keys",
        json={"name": "rebound"},
        headers={**live.admin, **evil, **JSON},
        timeout=30,
    )
    assert created.status_code == 400
    for host in ("localhost:1", "LOCALHOST", "[::1]:8080", "127.0.0.1"):
        ok = httpx2.get(f"{live.url}/healthz", headers={"host": host}, timeout=30)
        assert ok.status_code == 200, host
    for host in ("127.0.0.1.evil.example", "evil.example:8080", "[::2]:80", "localhost.evil"):
        refused = httpx2.get(f"{live.url}/healthz", headers={"host": host}, timeout=30)
        assert refused.status_code == 400, host
    assert key_names(live) == ["test"]


def test_a_request_without_host_is_refused(live: LiveGateway) -> None:
    port = int(urlsplit(live.url).port or 0)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert b"untrusted_host" in reply


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8443", "example.com"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1", "[::1"),
    ],
)
def test_host_names_drop_port_brackets_and_case(header: str, name: str) -> None:
    assert host_name(header) == name


def _hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


def test_trusted_hosts_from_settings_and_the_wildcard() -> None:
    inner = Starlette(routes=[Route("/", _hello)])
    only = TestClient(TrustedHosts(inner, hosts=["api.example.com"]), base_url="http://x")
    assert only.get("/", headers={"host": "API.example.com:443"}).text == "hello"
    refused = only.get("/", headers={"host": "127.0.0.1"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "untrusted_host"
    anyone = TestClient(TrustedHosts(inner, hosts=["*"]), base_url="http://x")
    assert anyone.get("/", headers={"host": "evil.example"}).text == "hello"


# -- cross-site requests -------------------------------------------------------------------------


def test_cross_site_form_posts_cannot_create_keys(live: LiveGateway) -> None:
    body = '{"name": "csrf", "models": ["fake"]}'
    for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        content = body + "=" if "urlencoded" in media else body
        response = httpx2.post(
            f"{live.url}/admin/keys",
            content=content,
            headers={**live.admin, "content-type": media},
            timeout=30,
        )
        assert response.status_code == 415, media
        assert response.json()["error"]["code"] == "unsupported_media_type"
    no_type = httpx2.post(f"{live.url}/admin/keys", content=body, headers=live.admin, timeout=30)
    assert no_type.status_code == 415
    assert key_names(live) == ["test"]
    # the same request as JSON works: the 415s above are the media type, nothing else
    made = httpx2.post(
        f"{live.url}/admin/keys",
        content=body,
        headers={**live.admin, "content-type": "application/json; charset=utf-8"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    revoked = httpx2.request(
        "DELETE",
        f"{live.url}/admin/keys/{made.json()['id']}",
        content="x",
        headers={**live.admin, "content-type": "text/plain"},
        timeout=30,
    )
    assert revoked.status_code == 415  # a DELETE with a body is held to the same rule


def sign_in(live: LiveGateway, client: httpx2.Client) -> str:
    """Sign in through the form; the session id from the cookie."""
    ok = client.post("/dashboard/login", data={"token": ADMIN_TOKEN, "next": "/dashboard"})
    assert ok.status_code == 303, ok.text
    session: str = ok.cookies["tether_session"]
    return session


def test_cookie_requests_from_another_origin_are_refused(live: LiveGateway) -> None:
    with httpx2.Client(base_url=live.url, timeout=30) as client:
        session = sign_in(live, client)
        cookie = {"cookie": f"tether_session={session}"}
        assert client.get("/dashboard", headers=cookie).status_code == 200
        for origin in (
            {"origin": "http://evil.example"},
            {"origin": "null"},
            {"origin": live.url.replace("127.0.0.1", "localhost")},  # same site, other origin
            {"referer": "http://evil.example/page"},
            {},  # a cookie and neither header
        ):
            created = client.post(
                "/admin/keys", json={"name": "csrf"}, headers={**cookie, **origin}
            )
            assert created.status_code == 403, origin
            assert created.json()["error"]["code"] == "cross_origin"
            logout = client.post("/dashboard/logout", headers={**cookie, **origin})
            assert logout.status_code == 403, origin
        assert key_names(live) == ["test"]
        assert client.get("/dashboard", headers=cookie).status_code == 200  # still signed in
        for own in ({"origin": live.url}, {"referer": f"{live.url}/dashboard"}):
            made = client.post("/admin/keys", json={"name": "own"}, headers={**cookie, **own})
            assert made.status_code == 201, own
        # a login form posted from another site is refused too
        foreign = client.post(
            "/dashboard/login",
            data={"token": ADMIN_TOKEN},
            headers={"origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        assert "set-cookie" not in foreign.headers


# -- sessions ------------------------------------------------------------------------------------


def test_session_cookie_holds_no_token_and_logout_ends_it(
    live: LiveGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx2.Client(base_url=live.url, timeout=30) as client:
        ok = client.post("/dashboard/login", data={"token": ADMIN_TOKEN, "next": "/dashboard"})
        header = ok.headers["set-cookie"]
        session = ok.cookies["tether_session"]
        assert session != ADMIN_TOKEN
        assert ADMIN_TOKEN not in header
        assert len(session) >= 40  # 32 random bytes
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/dashboard"):
            assert attribute.lower() in header.lower()
        assert "secure" not in header.lower()  # plain http here; see the https test
        again = client.post(
            "/dashboard/login", data={"token": ADMIN_TOKEN}, headers={"origin": live.url}
        )
        renewed = again.cookies["tether_session"]
        assert renewed != session  # a fresh id per sign-in, and the old one ends
        with httpx2.Client(base_url=live.url, timeout=30) as other:
            old = {"cookie": f"tether_session={session}"}
            assert other.get("/dashboard", headers=old).status_code == 403
            cookie = {"cookie": f"tether_session={renewed}"}
            assert other.get("/dashboard", headers=cookie).status_code == 200
            out = other.post("/dashboard/logout", headers={**cookie, "origin": live.url})
            assert out.status_code == 303
            # the same cookie, presented again, is worth nothing: the session ended server-side
            assert other.get("/dashboard", headers=cookie).status_code == 403
            assert other.get("/admin/keys", headers=cookie).status_code == 401
    assert ADMIN_TOKEN not in caplog.text


def test_session_cookie_is_secure_over_https(tmp_path: Path) -> None:
    from tether import Client, FakeProvider
    from tether.server.app import create_app

    settings = gateway_settings(tmp_path)
    app = create_app(settings, client=Client(settings, providers={"fake": FakeProvider()}))
    with TestClient(app, base_url="https://localhost") as client:
        ok = client.post("/dashboard/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
        assert ok.status_code == 303
        assert "secure" in ok.headers["set-cookie"].lower()


def test_sessions_expire_and_are_capped() -> None:
    now = [1000.0]
    sessions = Sessions(60, limit=3, clock=lambda: now[0])
    first = sessions.open()
    assert sessions.valid(first)
    assert not sessions.valid(first + "x")
    now[0] += 61
    assert not sessions.valid(first)
    ids = [sessions.open() for _ in range(4)]
    assert not sessions.valid(ids[0])  # the oldest made room
    assert all(sessions.valid(i) for i in ids[1:])
    sessions.close(ids[1])
    assert not sessions.valid(ids[1])


# -- throttled sign-ins --------------------------------------------------------------------------


def test_sixth_wrong_token_in_a_minute_is_throttled(
    live: LiveGateway, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx2.Client(base_url=live.url, timeout=30) as client:
        for attempt in range(5):
            wrong = client.post("/dashboard/login", data={"token": f"guess-{attempt}"})
            assert wrong.status_code == 403, attempt
            assert "wrong token" in wrong.text
        sixth = client.post("/dashboard/login", data={"token": "guess-5"})
        assert sixth.status_code == 429
        assert 1 <= int(sixth.headers["retry-after"]) <= 60
        right = client.post("/dashboard/login", data={"token": ADMIN_TOKEN})
        assert right.status_code == 429  # the right token waits too: guessing gains nothing
        assert "set-cookie" not in right.headers
        api = client.get("/admin/keys", headers=ADMIN)
        assert api.status_code == 429
        assert api.json()["error"]["code"] == "rate_limit_exceeded"
        assert "retry-after" in api.headers
        for response in (sixth, right, api):
            assert ADMIN_TOKEN not in response.text
            assert "guess-" not in response.text
    assert ADMIN_TOKEN not in caplog.text


def test_wrong_bearer_tokens_count_as_failures(live: LiveGateway) -> None:
    for attempt in range(5):
        wrong = httpx2.get(
            f"{live.url}/admin/keys",
            headers={"authorization": f"Bearer guess-{attempt}"},
            timeout=30,
        )
        assert wrong.status_code == 401
        assert f"guess-{attempt}" not in wrong.text
    assert httpx2.get(f"{live.url}/admin/keys", headers=ADMIN, timeout=30).status_code == 429


def test_throttle_window_slides_and_caps_everyone() -> None:
    now = [0.0]
    throttle = LoginThrottle(per_client=2, overall=3, window_s=60, clock=lambda: now[0])
    throttle.failed("a")
    now[0] = 10
    throttle.failed("a")
    assert throttle.retry_after("a") == pytest.approx(50)
    assert throttle.retry_after("b") is None
    now[0] = 60  # the first failure leaves the window
    assert throttle.retry_after("a") is None
    throttle.failed("b")
    throttle.failed("c")
    assert throttle.retry_after("d") == pytest.approx(10)  # three in the window: all wait
    now[0] = 130
    assert throttle.retry_after("d") is None
    throttle.failed("e")
    throttle.succeeded("e")
    assert throttle.retry_after("e") is None


# -- the stored admin token ----------------------------------------------------------------------


def test_token_file_is_owner_only_and_reused(tmp_path: Path) -> None:
    first = load_or_create(tmp_path / "data")
    assert first.created
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    assert first.path.read_text().strip() == first.value.get_secret_value()
    assert len(first.value.get_secret_value()) >= 43  # token_urlsafe(32)
    again = load_or_create(tmp_path / "data")
    assert not again.created
    assert again.value == first.value

    os.chmod(first.path, 0o644)
    with pytest.raises(ConfigError) as readable:
        load_or_create(tmp_path / "data")
    assert "chmod 600" in readable.value.fix
    assert first.value.get_secret_value() not in str(readable.value)

    first.path.write_text("")
    os.chmod(first.path, 0o600)
    with pytest.raises(ConfigError):
        load_or_create(tmp_path / "data")


def test_token_file_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        made = load_or_create(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(made.path.stat().st_mode) == 0o600
