"""The dashboard's costs page against a real gateway: admins only, breakdowns and totals for
the chosen period, the daily chart, and names from requests shown as text, never markup."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import openai
import pytest
from starlette.testclient import TestClient

from tether.observe.request_log import RequestRecord

from .conftest import LiveGateway
from .test_dashboard import app_for, assert_no_markup_from_data

NOW = datetime.now(UTC)
HOSTILE_PROMPT = "<script>alert('p')</script>"
HOSTILE_MODEL = '"><img src=x onerror=alert(1)>'


def record(
    id: str, at: datetime, cost: float, *, model: str = "gpt-4o-mini", prompt: str | None = None,
    version: str | None = None, key: str | None = None, status: int = 200,
) -> RequestRecord:  # fmt: skip
    return RequestRecord(
        id=id, at=at, endpoint="chat.completions", key_id=key, model="fast", provider="openai",
        upstream_model=model, prompt=prompt, prompt_version=version, status=status, error=None,
        stream=False, messages=json.dumps([]), response="", output=None, contract=None,
        valid=None, attempts=None, input_tokens=1000, output_tokens=100, cost_usd=cost,
        latency_ms=1.0,
    )  # fmt: skip


@pytest.fixture
def http(live: LiveGateway) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=live.url, timeout=30, headers=live.admin) as client:
        yield client


@pytest.fixture
def seeded(live: LiveGateway) -> LiveGateway:
    key, _ = live.gateway.keys.create("<i>ops</i>")
    log = live.gateway.log
    log.record(record("c1", NOW - timedelta(hours=1), 0.5, prompt="triage", version="1.0.0",
                      key=key.id))  # fmt: skip
    log.record(record("c2", NOW - timedelta(hours=2), 0.25, prompt="triage", version="1.1.0"))
    log.record(record("c3", NOW - timedelta(days=3), 1.0, model="claude-haiku-4-5", status=502,
                      prompt=HOSTILE_PROMPT, version="2.0.0"))  # fmt: skip
    log.record(record("c4", NOW - timedelta(days=10), 4.0, model=HOSTILE_MODEL))
    log.record(record("c5", NOW - timedelta(days=60), 100.0))  # outside every choice but 90
    assert log.flush()
    return live


def cells(html: str, table: str) -> dict[str, list[str]]:
    """First cell -> the other cells, for each row of the table with id `table`."""
    body = re.search(rf'<table class="costs" id="{table}">(.*?)</table>', html, re.S)
    assert body, table
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S):
        found = [
            re.sub(r"\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        if found:
            rows[found[0]] = found[1:]
    return rows


def value(html: str, name: str) -> str:
    match = re.search(rf'<span class="value">([^<]*)</span>\s*<span class="name">{name}', html)
    assert match, name
    return match.group(1)


def test_costs_need_an_admin(live: LiveGateway) -> None:
    for headers in ({}, {"authorization": f"Bearer {live.key}"}):  # a gateway key is not admin
        page = httpx2.get(f"{live.url}/dashboard/costs", headers=headers, timeout=30)
        assert page.status_code == 403
        assert 'name="token"' in page.text  # the login form, no figures
        assert "Cost per day" not in page.text


def test_without_an_admin_token_nobody_sees_costs(tmp_path: Path) -> None:
    app = app_for(tmp_path, admin_token=None)
    with TestClient(app, base_url="http://localhost", client=("127.0.0.1", 40000)) as client:
        page = client.get("/dashboard/costs")
        assert page.status_code == 403
        assert "TETHER_ADMIN_TOKEN" in page.text


def test_costs_page_breakdowns_and_totals(seeded: LiveGateway, http: httpx2.Client) -> None:
    page = http.get("/dashboard/costs")
    assert page.status_code == 200
    assert "script-src" not in page.headers["content-security-policy"]
    html = page.text
    assert 'aria-current="page">Costs<' in html
    assert value(html, "cost") == "$5.75"  # the last 30 days: c1..c4
    assert value(html, "requests") == "4"
    assert value(html, "failed requests") == "17.4%"  # 1.0 of 5.75
    by_model = cells(html, "by-model")
    assert by_model["gpt-4o-mini"] == ["2", "0", "2,000 / 200", "$0.75", "0%"]
    assert by_model["claude-haiku-4-5"] == ["1", "1", "1,000 / 100", "$1.00", "100%"]
    assert by_model["total"] == ["4", "1", "4,000 / 400", "$5.75", "17.4%"]
    by_version = cells(html, "by-version")
    assert by_version["triage@1.0.0"][3] == "$0.5"
    assert by_version["triage@1.1.0"][3] == "$0.25"
    assert by_version["(no prompt)"][3] == "$4.00"
    by_key = cells(html, "by-key")
    assert by_key["(no key)"][0] == "3"
    assert [k for k in by_key if k.endswith("(&lt;i&gt;ops&lt;/i&gt;)")]  # id (escaped name)
    assert 'aria-label="Cost per day"' in html
    assert html.count('<rect class="bar"') == 3  # three days with spending


def test_period_is_selectable(seeded: LiveGateway, http: httpx2.Client) -> None:
    week = http.get("/dashboard/costs", params={"days": "7"}).text
    assert value(week, "cost") == "$1.75"
    assert "last 7 days</option>" in week
    assert '<option value="7" selected>' in week
    quarter = http.get("/dashboard/costs", params={"days": "90"}).text
    assert value(quarter, "requests") == "5"
    assert cells(quarter, "by-model")["total"][3] == "$106"  # $105.75, whole dollars past $100
    odd = http.get("/dashboard/costs", params={"days": "-1; drop"})
    assert odd.status_code == 200
    assert "days: choose one of 7, 30, 90" in odd.text
    assert value(odd.text, "cost") == "$5.75"  # the default period


def test_names_from_requests_are_text(seeded: LiveGateway, http: httpx2.Client) -> None:
    html = http.get("/dashboard/costs").text
    assert "&lt;script&gt;alert(&#39;p&#39;)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert HOSTILE_MODEL not in html
    assert_no_markup_from_data(html)


def test_empty_period(live: LiveGateway, http: httpx2.Client) -> None:
    html = http.get("/dashboard/costs", params={"days": "7"}).text
    assert value(html, "cost") == "$0"
    assert "No requests in this period." in html
    assert "no data in this window" in html


def test_a_call_through_the_sdk_is_costed(live: LiveGateway, http: httpx2.Client) -> None:
    sdk = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
    sdk.chat.completions.create(model="fake", messages=[{"role": "user", "content": "hi there"}])
    assert live.gateway.log.flush()
    html = http.get("/dashboard/costs").text
    assert value(html, "requests") == "1"
    assert value(html, "cost") != "$0"  # the fake model is priced in the test settings
