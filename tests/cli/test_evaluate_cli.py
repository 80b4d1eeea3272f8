"""`tether evaluate`: the configured checks run on sampled logged requests, a summary table per
prompt and evaluator, failures queued for review, a rerun finds nothing new, and a config
without evaluations is refused with the fix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.store.test_evaluations_store import NOW, log_request
from tether.cli import app
from tether.evals.production import EvaluationSettings
from tether.store.engine import open_database
from tether.store.reviews import queued

ENTRY = EvaluationSettings.model_validate(
    {
        "prompt": "ticket",
        "sample": 1.0,
        "review_sample": 0.0,
        "asserts": [{"type": "in", "field": "queue", "values": ["tech", "billing"]}],
    }
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'eval.db'}"
    path = tmp_path / "tether.toml"
    path.write_text(f'database_url = "{url}"\ndata_dir = "{tmp_path / "data"}"\n')
    engine = open_database(url)
    try:
        log_request(engine, "req_old", at=NOW - timedelta(days=3))
        log_request(engine, "req_tech")
        log_request(engine, "req_sales", response='{"queue": "sales"}')
        log_request(engine, "req_other", prompt="other")
    finally:
        engine.dispose()
    return path


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["evaluate", *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


def rows_of(output: str) -> list[list[str]]:
    found = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 6 and cells[0] != "prompt":
            found.append(cells)
    return found


def test_evaluate_shows_a_summary_and_queues_failures(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tether.cli.evaluate.evaluations_of", lambda settings: [ENTRY])
    out = run("--since", "1d", "-c", str(config))
    assert rows_of(out) == [
        ["ticket", "(all)", "2", "1", "1", "1"],
        ["", "in queue", "2", "1", "1", ""],
    ]
    url = f"sqlite:///{config.parent / 'eval.db'}"
    engine = open_database(url)
    try:
        assert [q.request.id for q in queued(engine)] == ["req_sales"]
    finally:
        engine.dispose()
    assert rows_of(run("-c", str(config)))[0][2] == "1"  # the old one, outside --since before
    assert "no sampled requests left to evaluate" in run("-c", str(config))


def test_options_and_configuration_errors(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run("-c", str(config), code=1)
    assert "no evaluations are configured" in out
    assert "[[evaluations]]" in out
    monkeypatch.setattr("tether.cli.evaluate.evaluations_of", lambda settings: [ENTRY])
    assert "for prompt 'nope'" in run("--prompt", "nope", "-c", str(config), code=1)
    assert "is not a date" in run("--since", "soon", "-c", str(config), code=2)
    assert rows_of(run("--limit", "1", "-c", str(config)))[0][2] == "1"
