"""`tether export finetune`: reviewed requests as chat fine-tuning JSONL: good answers as they
were, needs-fix ones as corrected, bad ones never; filters by prompt and verdict; standard
output by default."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.store.test_evaluations_store import NOW, log_request
from tether.cli import app
from tether.store.engine import open_database
from tether.store.reviews import add_review

SYSTEM = {"role": "system", "content": "Route the ticket."}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'export.db'}"
    path = tmp_path / "tether.toml"
    path.write_text(f'database_url = "{url}"\n')
    engine = open_database(url)
    try:
        for i, (name, user) in enumerate([("good", "the app crashes"), ("fixed", "refund ✓"),
                                          ("bad", "hi"), ("unfixed", "x")]):  # fmt: skip
            log_request(engine, f"req_{name}", user=user, at=NOW - timedelta(minutes=10 - i))
        log_request(engine, "req_other", prompt="other", user="other prompt")
        log_request(engine, "req_unreviewed")
        add_review(engine, "req_good", reviewer="ana", verdict="good")
        add_review(engine, "req_fixed", reviewer="ana", verdict="needs-fix",
                   corrected_output='{"queue": "billing"}', note="a refund")  # fmt: skip
        add_review(engine, "req_bad", reviewer="ana", verdict="bad")
        add_review(engine, "req_unfixed", reviewer="ana", verdict="needs-fix")  # no correction
        add_review(engine, "req_other", reviewer="ana", verdict="good")
    finally:
        engine.dispose()
    return path


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["export", "finetune", *args])
    assert result.exit_code == code, result.output
    return result.output


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_reviewed_triplets_as_jsonl(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    said = run("--prompt", "ticket", "--out", str(out), "-c", str(config))
    assert "2 examples written" in said
    assert "1 without an answer to export skipped" in said
    raw = out.read_text(encoding="utf-8")
    assert "✓" in raw  # UTF-8 as is, not escaped
    assert lines(raw) == [
        {"messages": [SYSTEM, {"role": "user", "content": "the app crashes"},
                      {"role": "assistant", "content": '{"queue": "tech"}'}]},
        {"messages": [SYSTEM, {"role": "user", "content": "refund ✓"},
                      {"role": "assistant", "content": '{"queue": "billing"}'}]},
    ]  # fmt: skip


def test_filters_and_standard_output(config: Path, tmp_path: Path) -> None:
    every = lines(run("-c", str(config)))
    assert [m["messages"][1]["content"] for m in every] == [
        "the app crashes", "refund ✓", "other prompt"
    ]  # fmt: skip
    fixed = lines(run("--verdict", "needs-fix", "-c", str(config)))
    assert [m["messages"][-1]["content"] for m in fixed] == ['{"queue": "billing"}']
    assert "invalid value" in run("--verdict", "bad", "-c", str(config), code=2).lower()
    missing = tmp_path / "no" / "such" / "folder" / "x.jsonl"
    assert "cannot write" in run("--out", str(missing), "-c", str(config), code=1)
