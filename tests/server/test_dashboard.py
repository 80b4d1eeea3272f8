"""The dashboard against a real gateway: calls go in through the openai SDK, pages come out
over HTTP. Content, filters, escaping of model output and user strings, secrets, access."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx2
import openai
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from markupsafe import escape
from openai.types.shared_params import ResponseFormatJSONSchema
from starlette.testclient import TestClient

from tests.conftest import fresh_postgres
from tether import Client, FakeProvider
from tether.observe.request_log import RequestRecord
from tether.prompts.loader import parse_spec
from tether.server.app import create_app
from tether.server.dashboard.filters import RequestFilters
from tether.server.dashboard.overview import overview
from tether.server.dashboard.request_log import list_requests
from tether.store import open_database
from tether.store.daily_stats import percentile
from tether.store.tables import requests

from .conftest import LiveGateway, free_port, gateway_settings

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts" / "feedback-sentiment"
ADMIN_TOKEN = "s3cret-admin-token"
VERDICT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "schema": {
            "type": "object",
            "properties": {"ok": {"type": "boolean"}},
            "required": ["ok"],
        },
    },
}


class Site:
    """A live gateway seen from outside: one openai client per key and one HTTP client, reused
    (making a client per call costs more than the call)."""

    def __init__(self, live: LiveGateway) -> None:
        self.live = live
        self.http = httpx2.Client(base_url=live.url, timeout=30, headers=live.admin)
        self._sdks: dict[str, openai.OpenAI] = {}

    def sdk(self, key: str | None = None) -> openai.OpenAI:
        key = key or self.live.key
        if key not in self._sdks:
            self._sdks[key] = openai.OpenAI(base_url=self.live.v1, api_key=key, max_retries=0)
        return self._sdks[key]

    def chat(self, content: str, *, key: str | None = None, system: str = "") -> str:
        """One plain chat call; its request id."""
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": content})
        reply = self.sdk(key).chat.completions.create(model="fake", messages=messages)  # type: ignore[arg-type]
        return reply.id.removeprefix("chatcmpl-")

    def get(self, path: str, **params: str) -> httpx2.Response:
        response = self.http.get(path, params=params)
        assert response.status_code < 500, response.text
        return response

    def listed(self, **params: str) -> list[str]:
        """Request ids on a page of the request log, in the order shown."""
        page = self.get("/dashboard/requests", **params)
        assert page.status_code == 200
        return re.findall(r'<a class="id" href="/dashboard/requests/([^"]+)"', page.text)

    def flush(self) -> None:
        assert self.live.gateway.log.flush()

    def close(self) -> None:
        self.http.close()
        for client in self._sdks.values():
            client.close()


@pytest.fixture
def site(live: LiveGateway) -> Iterator[Site]:
    found = Site(live)
    try:
        yield found
    finally:
        found.close()


ALLOWED_TAGS = {
    "html", "head", "meta", "title", "link", "body", "header", "nav", "main", "section", "a",
    "h1", "h2", "h3", "p", "small", "span", "div", "dl", "dt", "dd", "pre", "code", "ul", "ol",
    "li", "table", "thead", "tbody", "tr", "th", "td", "form", "label", "input", "select",
    "option", "button", "details", "summary", "figure", "figcaption", "svg", "line", "text",
    "rect", "polyline", "circle",
}  # fmt: skip


class TagAudit(HTMLParser):
    """Every tag and attribute in a page: data must never add any."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def assert_no_markup_from_data(html: str) -> None:
    assert "<script" not in html.lower()
    audit = TagAudit()
    audit.feed(html)
    assert audit.tags <= ALLOWED_TAGS, audit.tags - ALLOWED_TAGS
    assert audit.handlers == []


# -- a gateway with a bit of everything in its log --------------------------------------------


@dataclass
class Seeded:
    site: Site
    plain: str  # a chat with a system message, with feedback
    invalid: str  # response_format json_schema; the echo is not JSON: 422, invalid
    prompt: str  # a registered prompt run, valid output
    missing: str  # unknown model: 404
    other: str  # made with a second key
    other_key_id: str
    other_secret: str
    feedback: str  # the feedback call on `plain`: logged, but not a model call

    @property
    def live(self) -> LiveGateway:
        return self.site.live

    @property
    def all(self) -> set[str]:
        return {self.plain, self.invalid, self.prompt, self.missing, self.other, self.feedback}


def push_prompts(site: Site) -> None:
    live = site.live
    registry = live.gateway.client.registry
    for version in ("1.0.0", "1.1.0"):
        source = (PROMPTS / f"{version}.yaml").read_text("utf-8")
        loaded = parse_spec(source, source_name=f"{version}.yaml")
        registry.push(loaded.spec, source=source, author="ada", message=f"release {version}")
    registry.set_label("feedback-sentiment", "production", "1.0.0", actor="ada", reason="first")
    registry.set_label("feedback-sentiment", "production", "1.1.0", actor="bob", reason="themes")
    registry.rollback("feedback-sentiment", "production", actor="cy", reason="too <b>slow</b>")
    registry.set_label("feedback-sentiment", "staging", "1.1.0", actor="bob", reason="")


@pytest.fixture
def seeded(site: Site) -> Seeded:
    live = site.live
    plain = site.chat("hello dashboard", system='Answer with "quoted words".')
    with pytest.raises(openai.UnprocessableEntityError) as invalid:
        site.sdk().chat.completions.create(
            model="fake",
            messages=[{"role": "user", "content": "is this fine"}],
            response_format=VERDICT,
        )
    push_prompts(site)
    live.fake.enqueue('{"sentiment": "positive", "confidence": 0.9}')
    run = site.http.post(
        "/v1/prompts/feedback-sentiment/run",
        json={"inputs": {"comment": "Works great"}, "model": "fake"},
        headers={"authorization": f"Bearer {live.key}"},
        timeout=30,
    )
    assert run.status_code == 200, run.text
    with pytest.raises(openai.NotFoundError) as missing:
        site.sdk().chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "anyone?"}]
        )
    other_key, other_secret = live.gateway.keys.create("second")
    other = site.chat("from the other key", key=other_secret)
    note = site.http.post(
        "/v1/feedback",
        json={"request_id": plain, "score": 1, "label": "good", "comment": "<b>nice</b> one"},
        headers={"authorization": f"Bearer {live.key}"},
        timeout=30,
    )
    assert note.status_code == 200, note.text
    site.flush()
    return Seeded(
        site=site,
        plain=plain,
        invalid=invalid.value.response.headers["x-tether-request-id"],
        prompt=run.json()["request_id"],
        missing=missing.value.response.headers["x-tether-request-id"],
        other=other,
        other_key_id=other_key.id,
        other_secret=other_secret,
        feedback=note.headers["x-tether-request-id"],
    )


# -- pages --------------------------------------------------------------------------------------


def value(html: str, name: str) -> str:
    match = re.search(
        rf'<span class="value">([^<]*)</span>\s*<span class="name">{name}', html, re.S
    )
    assert match, name
    return match.group(1)


def test_overview_shows_totals_and_charts(seeded: Seeded) -> None:
    page = seeded.site.get("/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all
    html = page.text
    assert value(html, "requests") == "5"
    assert value(html, "error rate") == "40%"  # the 422 and the 404
    assert value(html, "conformity") == "50%"  # one valid prompt run, one invalid chat
    assert value(html, "cost").startswith("$0.0")
    assert int(value(html, "tokens").replace(",", "")) > 0
    for title in ("Cost per day", "Conformity per day", "Latency per day"):
        assert f'aria-label="{title}"' in html
    assert html.count("<svg") == 3
    assert html.count('class="axis-label"') == 6  # x and y on each chart
    for label in ("cost (USD)", "valid outputs", "latency", "day (UTC)", "p50", "p95", "100%"):
        assert f">{label}<" in html
    today = datetime.now(UTC).date()
    assert f"{today:%b} {today.day}<" in html  # the last day is labelled on the x axis
    assert f"<td>{today.isoformat()}</td>" in html  # numbers by day
    assert_no_markup_from_data(html)


def test_overview_spreads_days_and_percentiles(site: Site) -> None:
    live = site.live
    now = datetime.now(UTC)
    for days_ago, latencies, valid in ((3, [10, 20, 30, 40], True), (40, [99], False)):
        for i, latency in enumerate(latencies):
            live.gateway.log.record(record(f"req_old{days_ago}_{i}", now - timedelta(days_ago),
                                           latency_ms=latency, valid=valid))  # fmt: skip
    site.flush()
    html = site.get("/dashboard").text
    assert value(html, "requests") == "4"  # the row 40 days ago is outside the window
    shown = (now - timedelta(3)).date().isoformat()
    row = re.search(rf"<tr><td>{shown}</td>(.*?)</tr>", html, re.S)
    assert row is not None
    cells = re.findall(r'<td class="n">([^<]*)</td>', row.group(1))
    assert cells[0] == "4"  # requests
    assert cells[3:] == ["0", "100%", "25 ms", "38.5 ms"]  # invalid, conformity, p50, p95
    assert html.count('class="bar"') == 1
    assert (now - timedelta(40)).date().isoformat() not in html


def test_request_log_columns_and_order(seeded: Seeded) -> None:
    page = seeded.site.get("/dashboard/requests")
    html = page.text
    for column in ("time (UTC)", "request id", "endpoint", "model", "prompt@version", "status",
                   "valid", "tokens in/out", "cost", "latency ms"):  # fmt: skip
        assert f">{column}</th>" in html
    assert seeded.site.listed() == sorted(seeded.all, reverse=True)  # ids sort by arrival
    assert "feedback-sentiment@1.0.0" in html  # production, after the rollback
    assert "prompts.run" in html
    assert "chat.completions" in html
    assert '<span class="bad">error 422</span>' in html
    assert '<span class="bad">error 404</span>' in html
    assert "6 requests" in html
    assert_no_markup_from_data(html)


def test_request_log_filters(seeded: Seeded) -> None:
    site, s = seeded.site, seeded
    today = datetime.now(UTC).date()

    def ids(**params: str) -> set[str]:
        return set(site.listed(**params))

    assert ids(model="fake") == s.all - {s.missing, s.feedback}
    assert ids(model="nope") == {s.missing}
    assert ids(prompt="feedback-sentiment") == {s.prompt}
    assert ids(prompt="feedback-sentiment@1.0.0") == {s.prompt}
    assert ids(prompt="feedback-sentiment@1.1.0") == set()
    assert ids(status="ok") == {s.plain, s.prompt, s.other, s.feedback}
    assert ids(status="error") == {s.invalid, s.missing}
    assert ids(valid="yes") == {s.prompt}
    assert ids(valid="no") == {s.invalid}
    assert ids(valid="none") == {s.plain, s.missing, s.other, s.feedback}
    assert ids(status="error", valid="no") == {s.invalid}
    assert ids(key=s.other_key_id) == {s.other}
    assert ids(q="HELLO dashboard") == {s.plain}  # case-insensitive, in the prompt
    assert ids(q="echo: from the other") == {s.other}  # in the response
    assert ids(q='"quoted words"') == {s.plain}  # as typed, though stored as JSON
    assert ids(q="%") == set()  # wildcards are literal
    assert ids(q="_") == set()
    assert ids(date_from=today.isoformat(), date_to=today.isoformat()) == s.all
    assert ids(date_from=(today + timedelta(1)).isoformat()) == set()
    assert ids(date_to=(today - timedelta(1)).isoformat()) == set()
    form = site.get("/dashboard/requests", model="fake", status="error", q="<i>x</i>").text
    assert 'value="fake"' in form
    assert '<option value="error" selected>' in form
    assert 'value="&lt;i&gt;x&lt;/i&gt;"' in form
    bad = site.get("/dashboard/requests", status="bogus", date_from="yesterday", page="x")
    assert bad.status_code == 200
    assert "status: choose one of ok, error (ignored)" in bad.text
    assert "date from: &#39;yesterday&#39; is not a date (YYYY-MM-DD) (ignored)" in bad.text
    assert set(site.listed(status="bogus")) == s.all


def record(id: str, at: datetime, *, latency_ms: float = 5.0, valid: bool | None = None,
           status: int = 200) -> RequestRecord:  # fmt: skip
    return RequestRecord(
        id=id, at=at, endpoint="chat.completions", key_id=None, model="fake", provider="fake",
        upstream_model="fake-model", prompt=None, prompt_version=None, status=status, error=None,
        stream=False, messages=json.dumps([{"role": "user", "content": id}]), response="echo",
        output=None, contract="c" if valid is not None else None, valid=valid, attempts=None,
        input_tokens=1, output_tokens=1, cost_usd=0.000003, latency_ms=latency_ms,
    )  # fmt: skip


def test_request_log_pagination(site: Site) -> None:
    live = site.live
    start = datetime.now(UTC) - timedelta(hours=1)
    made = [f"req_page{i:03d}" for i in range(120)]
    for i, request_id in enumerate(made):
        live.gateway.log.record(record(request_id, start + timedelta(seconds=i)))
    site.flush()
    newest_first = made[::-1]
    first = site.get("/dashboard/requests", model="fake")
    assert "120 requests, page 1 of 3" in first.text
    assert site.listed(model="fake") == newest_first[:50]
    assert 'href="/dashboard/requests?model=fake&amp;page=2"' in first.text
    assert site.listed(model="fake", page="2") == newest_first[50:100]
    assert site.listed(model="fake", page="3") == newest_first[100:]
    assert site.listed(model="fake", page="99") == newest_first[100:]  # the last page
    last = site.get("/dashboard/requests", model="fake", page="3").text
    assert 'rel="prev"' in last
    assert 'rel="next"' not in last


def test_request_detail(seeded: Seeded) -> None:
    site, live = seeded.site, seeded.live
    html = site.get(f"/dashboard/requests/{seeded.invalid}").text
    assert f'<h1 class="id">{seeded.invalid}</h1>' in html
    assert "<code>verdict</code>" in html
    assert '<span class="bad">invalid</span>' in html
    assert html.count('<div class="attempt">') == 3  # the first try and two repairs
    assert "<pre>echo: is this fine</pre>" in html  # the first attempt's raw output
    assert "not valid JSON" in html
    assert '<span class="bad">error 422</span>' in html
    assert "output did not meet contract &#39;verdict&#39;" in html

    html = site.get(f"/dashboard/requests/{seeded.prompt}").text
    assert "feedback-sentiment@1.0.0" in html
    assert '<div class="role">system</div>' in html
    assert '<div class="role">user</div>' in html
    assert "<pre>Works great</pre>" in html  # the rendered prompt
    assert '<pre class="output">{\n  &#34;sentiment&#34;: &#34;positive&#34;,' in html  # parsed
    assert '<span class="ok">valid</span>' in html
    assert "fake · fake-model" in html  # provider and upstream model
    key = live.gateway.keys.verify(live.key)
    assert f"<code>{key.id}</code> (test)" in html

    html = site.get(f"/dashboard/requests/{seeded.plain}").text
    assert "<pre>Answer with &#34;quoted words&#34;.</pre>" in html
    assert '<pre class="output">echo: hello dashboard</pre>' in html
    assert "No contract" in html
    assert "&lt;b&gt;nice&lt;/b&gt; one" in html  # feedback, escaped
    assert "<td>good</td>" in html
    assert re.search(r"\d+ in / \d+ out", html)
    assert_no_markup_from_data(html)


def test_unknown_request_is_a_404_page(seeded: Seeded) -> None:
    page = seeded.site.get("/dashboard/requests/req_nope")
    assert page.status_code == 404
    assert "Request not found" in page.text
    page = seeded.site.get("/dashboard/requests/<img src=x onerror=alert(1)>")
    assert page.status_code == 404
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert_no_markup_from_data(page.text)


def test_prompts_page(seeded: Seeded) -> None:
    html = seeded.site.get("/dashboard/prompts").text
    assert "<h2>feedback-sentiment</h2>" in html
    versions = html.split("<h3>Versions</h3>")[1]
    assert versions.index("<td>1.1.0</td>") < versions.index("<td>1.0.0</td>")  # newest first
    assert "release 1.1.0" in html
    assert "<td>ada</td>" in html
    version = seeded.live.gateway.client.registry.get("feedback-sentiment", version="1.0.0")
    assert f'title="{version.content_hash}">{version.content_hash[:12]}</code>' in html
    moves = re.findall(r"</span> (\S+) → (\S+)\s+<span class=\"kind\">(\w+)</span> by (\w+)", html)
    assert moves == [
        ("∅", "1.0.0", "move", "ada"),
        ("1.0.0", "1.1.0", "move", "bob"),
        ("1.1.0", "1.0.0", "rollback", "cy"),
        ("∅", "1.1.0", "move", "bob"),
    ]
    assert "too &lt;b&gt;slow&lt;/b&gt;" in html
    assert_no_markup_from_data(html)


def test_no_page_shows_a_key_secret(seeded: Seeded) -> None:
    site, live = seeded.site, seeded.live
    paths = ["/dashboard", "/dashboard/requests", "/dashboard/prompts"]
    paths += [f"/dashboard/requests/{i}" for i in seeded.all]
    pages = [site.get(path).text for path in paths]
    pages.append(site.get("/dashboard/requests", key=seeded.other_key_id).text)
    assert any(seeded.other_key_id in page for page in pages)
    for secret in (live.key, seeded.other_secret):
        for page in pages:
            assert secret not in page
            assert secret[10:] not in page  # not even past the public prefix


# -- naughty input ------------------------------------------------------------------------------


def test_script_in_a_message_is_escaped(site: Site) -> None:
    request_id = site.chat("<script>alert(1)</script>")
    site.flush()
    html = site.get(f"/dashboard/requests/{request_id}").text
    assert "<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>" in html
    assert "echo: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert_no_markup_from_data(html)
    assert site.listed(q="<script>alert(1)</script>") == [request_id]


def found_by_search(site: Site, text: str, request_id: str) -> bool:
    """Whether searching for `text` lists `request_id` (common text matches many pages)."""
    for page in range(1, 20):
        shown = site.listed(q=text, page=str(page))
        if request_id in shown:
            return True
        if len(shown) < 50:
            return False
    return False


def test_naughty_strings_show_escaped(site: Site, data_dir: Path) -> None:
    strings: list[str] = json.loads((data_dir / "json" / "blns" / "blns.json").read_text("utf-8"))
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda s: (site.chat(s), s), strings))
    site.flush()

    def check(item: tuple[str, str]) -> None:
        request_id, text = item
        page = site.get(f"/dashboard/requests/{request_id}")
        assert page.status_code == 200
        assert f"<pre>{escape(text)}</pre>" in page.text, text
        assert f'<pre class="output">{escape("echo: " + text)}</pre>' in page.text, text
        assert_no_markup_from_data(page.text)
        if text.strip():
            assert found_by_search(site, text, request_id), text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(check, made))
    assert_no_markup_from_data(site.get("/dashboard/requests").text)
    assert_no_markup_from_data(site.get("/dashboard").text)


# -- access -------------------------------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[str]:
    """A gateway with an admin token, on a free port: its URL."""
    settings = gateway_settings(tmp_path, admin_token=ADMIN_TOKEN)
    fake = FakeProvider(respond=lambda call: "ok")
    app = create_app(settings, client=Client(settings, providers={"fake": fake}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def test_token_login_flow(guarded: str) -> None:
    with httpx2.Client(base_url=guarded, timeout=30) as client:
        for path in ("/dashboard", "/dashboard/requests", "/dashboard/prompts",
                     "/dashboard/requests/req_x"):  # fmt: skip
            page = client.get(path)
            assert page.status_code == 403, path  # loopback is not enough with a token set
            assert 'name="token"' in page.text  # the login form
            assert f'name="next" value="{path}"' in page.text
        assert client.get("/dashboard/login").status_code == 200

        wrong = client.post("/dashboard/login", data={"token": "nope", "next": "/dashboard"})
        assert wrong.status_code == 403
        assert "wrong token" in wrong.text
        assert "set-cookie" not in wrong.headers

        ok = client.post(
            "/dashboard/login", data={"token": ADMIN_TOKEN, "next": "/dashboard/prompts"}
        )
        assert ok.status_code == 303
        assert ok.headers["location"] == "/dashboard/prompts"
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith("tether_session=")
        assert ADMIN_TOKEN not in cookie
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/dashboard"):
            assert attribute.lower() in cookie.lower()
        assert client.get("/dashboard").status_code == 200
        assert client.get("/dashboard/prompts").status_code == 200
        assert ADMIN_TOKEN not in client.get("/dashboard").text

        logout = client.post("/dashboard/logout", headers={"origin": guarded})
        assert logout.status_code == 303
        assert "max-age=0" in logout.headers["set-cookie"].lower()
        assert client.get("/dashboard").status_code == 403

    for target in ("https://evil.example/", "//evil.example/x", "/admin/keys", "/dashboard\\x"):
        away = httpx2.post(
            f"{guarded}/dashboard/login", data={"token": ADMIN_TOKEN, "next": target}, timeout=30
        )
        assert away.headers["location"] == "/dashboard", target
    bearer = httpx2.get(
        f"{guarded}/dashboard", headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    )
    assert bearer.status_code == 200


def app_for(tmp_path: Path, **server: object) -> FastAPI:
    settings = gateway_settings(tmp_path, **server)
    return create_app(settings, client=Client(settings, providers={"fake": FakeProvider()}))


def test_without_a_token_nobody_gets_in(tmp_path: Path) -> None:
    for peer in ("203.0.113.9", "127.0.0.1"):  # loopback is no credential
        app = app_for(tmp_path / peer, admin_token=None)
        with TestClient(app, base_url="http://localhost", client=(peer, 40000)) as client:
            for path in ("/dashboard", "/dashboard/requests", "/dashboard/prompts",
                         "/dashboard/login"):  # fmt: skip
                page = client.get(path)
                assert page.status_code == 403, path
                assert "TETHER_ADMIN_TOKEN" in page.text  # how to set one
                assert 'name="token"' not in page.text  # no token to sign in with
            assert client.post("/dashboard/login", data={"token": "x"}).status_code == 403


def test_odd_credentials_are_refused_not_errors(tmp_path: Path) -> None:
    app = app_for(tmp_path, admin_token=ADMIN_TOKEN)
    with TestClient(app, base_url="http://localhost") as client:
        for headers in ({"cookie": "tether_session=\xe9t\xe9"}, {"authorization": "Bearer \xe9"}):
            raw = {k: v.encode("latin-1") for k, v in headers.items()}
            assert client.get("/dashboard", headers=raw).status_code == 403  # type: ignore[arg-type]
        big = client.post("/dashboard/login", content=b"token=" + b"x" * 20_000)
        assert big.status_code == 403


# -- the queries on each database ----------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        found = open_database(f"sqlite:///{tmp_path / 'dash.db'}")
        yield found
        found.dispose()
        return
    with fresh_postgres() as url:
        found = open_database(url)
        try:
            yield found
        finally:
            found.dispose()


def test_queries_agree_across_databases(engine: sa.Engine) -> None:
    today = date(2025, 3, 10)
    noon = datetime(2025, 3, 10, 12, tzinfo=UTC)
    rows = [
        record("req_a", noon, latency_ms=10, valid=True),
        record("req_b", noon, latency_ms=20, valid=False, status=422),
        record("req_c", noon, latency_ms=30),
        record("req_d", noon - timedelta(days=1, hours=12, minutes=1), latency_ms=7),  # day 8
        record("req_e", datetime(2025, 3, 9, 23, 59, tzinfo=UTC), latency_ms=100_000),
        record("req_f", noon - timedelta(days=31), latency_ms=1),  # outside the window
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(requests), [r.row() for r in rows])
    data = overview(engine, today)
    assert len(data.days) == 30
    assert data.days[-1].day == today
    assert (data.requests, data.errors, data.valid, data.invalid) == (5, 1, 1, 1)
    by_day = {d.day: d for d in data.days if d.requests}
    assert sorted(by_day) == [date(2025, 3, 8), date(2025, 3, 9), date(2025, 3, 10)]
    assert by_day[today].p50_ms == 20
    assert by_day[today].p95_ms == pytest.approx(29)
    assert by_day[today].conformity == 0.5
    assert by_day[date(2025, 3, 9)].p95_ms == 100_000

    def ids(**fields: object) -> list[str]:
        return [r.id for r in list_requests(engine, RequestFilters(**fields)).rows]  # type: ignore[arg-type]

    assert ids() == ["req_c", "req_b", "req_a", "req_e", "req_d", "req_f"]
    assert ids(date_from=date(2025, 3, 9), date_to=date(2025, 3, 9)) == ["req_e"]
    assert ids(valid="none", status="ok") == ["req_c", "req_e", "req_d", "req_f"]
    assert ids(q="REQ_A") == ["req_a"]
    assert ids(q="req%") == []


def test_percentile_matches_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0], 0.95) == 4.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.5) == 25.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 0.95) == pytest.approx(38.5)
