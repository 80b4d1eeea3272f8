"""The dashboard's alerts page: admins only, the latest alerts with each sink's outcome,
filters by rule and prompt, and text from rules and prompts shown as text, never markup."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from tether.server.dashboard.alerts import outcomes
from tether.store.alerts import AlertRow, add_alert

from .conftest import ADMIN_TOKEN
from .test_dashboard import app_for, assert_no_markup_from_data

NOW = datetime.now(UTC).replace(microsecond=0)
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
HOSTILE = "<script>alert('x')</script>"


def rows(html: str) -> list[list[str]]:
    body = re.search(r'<table class="alerts" id="alerts">(.*?)</table>', html, re.S)
    assert body
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        if cells:
            found.append([re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", c)).strip() for c in cells])
    return found


def test_alert_history_with_sink_outcomes(tmp_path: Path) -> None:
    app = app_for(tmp_path)
    with TestClient(app, base_url="http://localhost") as client:
        engine = app.state.gateway.engine
        add_alert(engine, AlertRow(NOW - timedelta(hours=2), "sentiment-drift", "triage",
                                   "1.2.0", "drift:enum:sentiment", 2.5e-8, 0.001,
                                   "enum:sentiment chi2_p = 2.5e-08, below 0.001",
                                   {"log": {"ok": True, "attempts": 1},
                                    "ops": {"ok": False, "attempts": 3, "status": 500,
                                            "error": "HTTP 500"}}))  # fmt: skip
        add_alert(engine, AlertRow(NOW - timedelta(hours=1), HOSTILE, HOSTILE, None, "valid",
                                   0.5, 0.9, f"rate fell {HOSTILE}", {}))  # fmt: skip
        assert client.get("/dashboard/alerts").status_code == 403  # not signed in
        page = client.get("/dashboard/alerts", headers=ADMIN)
        assert page.status_code == 200
        assert "script-src" not in page.headers["content-security-policy"]
        html = page.text
        assert_no_markup_from_data(html)
        assert "&lt;script&gt;" in html
        newest, older = rows(html)
        assert newest[1] == "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
        assert newest[-1] == "not delivered yet"
        assert older[:6] == [(NOW - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S"),
                             "sentiment-drift", "triage 1.2.0", "drift:enum:sentiment",
                             "2.5e-08", "0.001"]  # fmt: skip
        assert older[-1] == "log: delivered (1 tries) ops: failed (3 tries, HTTP 500)"
        only = rows(client.get("/dashboard/alerts", params={"rule": "sentiment-drift"},
                               headers=ADMIN).text)  # fmt: skip
        assert [r[1] for r in only] == ["sentiment-drift"]
        none = client.get("/dashboard/alerts", params={"prompt": "other"}, headers=ADMIN).text
        assert "No alerts match these filters." in none


def test_outcomes_read_odd_json() -> None:
    assert outcomes({"a": "text", "b": {"ok": True, "attempts": 2, "status": 200}}) == [
        outcomes({"a": {}})[0],
        outcomes({"b": {"ok": True, "attempts": 2, "status": 200}})[0],
    ]
    assert outcomes({"a": "text"})[0].ok is False
