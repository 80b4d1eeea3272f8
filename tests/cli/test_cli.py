"""The `tether` command line, driven as a user would (Typer's runner, real local model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app

runner = CliRunner()


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "city.json"
    path.write_text(
        json.dumps(
            {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 40},
                    "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                },
                "required": ["city"],
            }
        )
    )
    return path


@pytest.mark.local_model
def test_generate_prints_validated_json(schema_file: Path) -> None:
    result = runner.invoke(
        app, ["generate", "--schema", str(schema_file), "--meta", "I live in Lyon."]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert isinstance(printed["city"], str)
    assert "attempt" in result.stderr


def test_generate_names_the_broken_schema_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "object", "properties": {"a": {"type": "strin"}}}')
    result = runner.invoke(app, ["generate", "--schema", str(broken), "hello"])
    assert result.exit_code == 1
    assert "broken.json" in result.stderr
    assert "/properties/a/type" in result.stderr
    assert "fix:" in result.stderr


def test_generate_unknown_model() -> None:
    result = runner.invoke(app, ["generate", "--model", "nope", "hello"])
    assert result.exit_code == 1
    assert "unknown model 'nope'" in result.stderr
    assert "[models.<name>]" in result.stderr


def test_bad_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text("[models.x]\nprovider = 'nope'\n")
    result = runner.invoke(app, ["models", "--config", str(config)])
    assert result.exit_code == 1
    assert str(config) in result.stderr
    assert "models.x.provider" in result.stderr


def test_models_lists_the_local_model() -> None:
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert "local" in result.stdout
    assert "grammar" in result.stdout


def test_preflight_shows_each_keyword(schema_file: Path) -> None:
    result = runner.invoke(app, ["preflight", "--schema", str(schema_file)])
    assert result.exit_code == 0, result.output
    assert "uniqueItems" in result.stdout
    assert "validated after" in result.stdout
    assert "enforced during decoding" in result.stdout


def test_preflight_refuses_what_the_model_cannot_honour(tmp_path: Path) -> None:
    lookahead = tmp_path / "lookahead.json"
    lookahead.write_text('{"type": "string", "pattern": "(?=a)b"}')
    result = runner.invoke(app, ["preflight", "--schema", str(lookahead)])
    assert result.exit_code == 1
    assert "cannot honour" in result.stderr


@pytest.mark.local_model
def test_llama_cpp_logs_stay_out_of_cli_output(tmp_path: Path) -> None:
    """llama.cpp prints some lines itself while a model loads; they go to logging instead."""
    done = subprocess.run(
        [sys.executable, "-m", "tether", "generate", "--model", "local-small",
         "--max-tokens", "2", "Hi"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "TETHER_DATA_DIR": str(tmp_path / "data")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "llama_" not in done.stderr
    assert "llama_" not in done.stdout
