"""`tether drift` on logged inputs: the table's `input_embedding` row, with the embedder the
settings name ([observe] evasive_embedder), and untested when that is "none"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.observe.test_input_drift import BILLING, SHIPPING, log_inputs, texts
from tether.cli import app
from tether.store.engine import open_database

NOW = datetime.now(UTC)


def config(tmp_path: Path, embedder: str) -> Path:
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    path = tmp_path / "tether.toml"
    path.write_text(f'database_url = "{url}"\n[observe]\nevasive_embedder = "{embedder}"\n')
    engine = open_database(url)
    try:
        log_inputs(engine, texts(BILLING, 50, 1), NOW - timedelta(days=5), timedelta(hours=1),
                   "old")  # fmt: skip
        log_inputs(engine, texts(SHIPPING, 40, 2), NOW - timedelta(hours=10),
                   timedelta(minutes=10), "new")  # fmt: skip
    finally:
        engine.dispose()
    return path


def input_row(embedder: str, tmp_path: Path) -> tuple[list[str], str]:
    args = ["drift", "support", "--version", "1.0.0", "-c", str(config(tmp_path, embedder))]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0] == "input_embedding":
            return cells, result.output
    pytest.fail(f"no input_embedding row in:\n{result.output}")


def test_inputs_on_a_new_topic_drift(tmp_path: Path) -> None:
    cells, out = input_row("fake", tmp_path)
    assert cells[1] == "embedding_p"
    assert cells[4:] == ["50", "40", "yes"]
    assert "drifted: input_embedding" in out


def test_no_embedder_leaves_the_inputs_untested(tmp_path: Path) -> None:
    cells, out = input_row("none", tmp_path)
    assert cells[2] == "-"
    assert cells[-1] == "-"
    assert "no drift" in out
