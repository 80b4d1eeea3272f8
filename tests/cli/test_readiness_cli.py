"""`tether readiness`: a spec file and a fake model behind a settings file; both reports written,
exit 0 or 1 by the verdict."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether import Client, FakeProvider, Settings
from tether.cli import app
from tether.messages import ProviderCall

runner = CliRunner()

SPEC = """\
name: ticket-priority
version: 1.2.0
inputs:
  type: object
  properties: {ticket: {type: string, minLength: 1}}
  required: [ticket]
output:
  schema:
    type: object
    properties: {priority: {enum: [low, high]}}
    required: [priority]
messages:
  - {role: system, content: "Rate the priority of the support ticket below."}
  - {role: user, content: "{{ ticket }}"}
tests:
  - {name: outage, inputs: {ticket: Site is down}, assert: [{type: equals, field: priority, value: high}]}
  - {name: typo, inputs: {ticket: Typo on the about page}, assert: [{type: equals, field: priority, value: low}]}
"""  # noqa: E501

CONFIG = """\
default_model = "fake"
data_dir = "{data}"
cache_dir = "{cache}"
[models.fake]
provider = "fake"
price = {{input_per_million = 1.0, output_per_million = 2.0}}
"""


def careful(call: ProviderCall) -> str:
    text = next(m.content for m in call.messages if m.role == "user")
    return json.dumps({"priority": "high" if "down" in text else "low"})


def gullible(call: ProviderCall) -> str:
    text = next(m.content for m in call.messages if m.role == "user")
    return "TETHER-PWNED" if "tether" in text else careful(call)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "ticket.yaml").write_text(SPEC)
    (tmp_path / "tether.toml").write_text(
        CONFIG.format(data=tmp_path / "data", cache=tmp_path / "cache")
    )
    return tmp_path


def invoke(
    project: Path, monkeypatch: pytest.MonkeyPatch, model: FakeProvider, *args: str
) -> tuple[int, str]:
    def open_client(path: Path | None) -> Client:
        return Client(Settings.load(path, environ={}), providers={"fake": model})

    monkeypatch.setattr("tether.cli.readiness.open_client", open_client)
    result = runner.invoke(
        app,
        ["readiness", str(project / "ticket.yaml"), "-c", str(project / "tether.toml"),
         "--out-dir", str(project / "out"), "--blns", "3", *args],
    )  # fmt: skip
    return result.exit_code, result.stdout + result.stderr


def test_a_ready_prompt_writes_both_reports_and_exits_0(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = invoke(project, monkeypatch, FakeProvider(respond=careful))
    assert code == 0, out
    assert "READY" in out
    assert "NOT READY" not in out
    page = (project / "out" / "readiness-ticket-priority.html").read_text()
    text = (project / "out" / "readiness-ticket-priority.md").read_text()
    assert "**Verdict: READY**" in text
    assert "2/2 cases passed (100.0%)" in text
    # requests: 2 cases + (empty, long, 3 naughty, 5 injections) for the one string input
    assert "| ticket-priority@1.2.0 | fake-model | 12 | 2 | 10 | 4 |" in text
    assert "| refused by input validation | 1 |" in text
    # self-contained: nothing fetched, every image inline, no script
    assert "Content-Security-Policy" in page
    assert re.search(r'(src|href)="(?!data:)', page) is None
    assert "<script" not in page.lower()
    assert page.count('src="data:image/png;base64,') == 1  # no confidence: no reliability diagram


def test_a_followed_injection_fails_the_verdict(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = invoke(project, monkeypatch, FakeProvider(respond=gullible))
    assert code == 1
    assert "NOT READY" in out
    assert "injection(s) followed (at most 0)" in out
    text = (project / "out" / "readiness-ticket-priority.md").read_text()
    assert "| injection followed | 4 |" in text  # every one that asks for the marker


def test_thresholds_decide_the_exit_code(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = FakeProvider(respond=lambda call: json.dumps({"priority": "low"}))
    code, out = invoke(project, monkeypatch, wrong, "--no-edges")
    assert code == 1
    assert "accuracy 50.0% below 90.0%" in out
    code, out = invoke(project, monkeypatch, wrong, "--no-edges", "--min-accuracy", "0.5")
    assert code == 0, out


def test_an_unknown_prompt_is_a_clear_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = invoke(
        project, monkeypatch, FakeProvider(respond=careful), "--spec", str(project / "nope.yaml")
    )
    assert code == 1
    assert "cannot read" in out
