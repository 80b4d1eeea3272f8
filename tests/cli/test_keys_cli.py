"""`tether keys list` shows what each key has spent, from the request log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from typer.testing import CliRunner

from tether.cli import app
from tether.errors import InvalidRequest
from tether.server.keys import KeyStore
from tether.store.engine import open_database
from tether.store.tables import api_keys, requests


def _logged(key_id: str, request_id: str, cost: float) -> dict[str, object]:
    return {
        "id": request_id, "at": datetime.now(UTC), "endpoint": "chat.completions",
        "key_id": key_id, "model": "fake", "provider": "fake", "upstream_model": "fake",
        "prompt": None, "prompt_version": None, "status": 200, "error": None, "stream": False,
        "messages": "[]", "response": "", "output": None, "contract": None, "valid": None,
        "attempts": None, "input_tokens": 1, "output_tokens": 1, "cost_usd": cost,
        "latency_ms": 1.0,
    }  # fmt: skip


def test_keys_list_shows_spend(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    config = tmp_path / "tether.toml"
    config.write_text(f'database_url = "{url}"\n')
    engine = open_database(url)
    try:
        store = KeyStore(engine)
        spender, _ = store.create("spender")
        store.create("idle")
        with engine.begin() as conn:
            conn.execute(insert(requests), [_logged(spender.id, "req_a", 0.25),
                                            _logged(spender.id, "req_b", 0.5)])  # fmt: skip
    finally:
        engine.dispose()
    listed = CliRunner().invoke(app, ["keys", "list", "-c", str(config)], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert "spent $" in listed.output
    rows = {line.split("│")[2].strip(): line for line in listed.output.splitlines() if "│" in line}
    assert "0.750000" in rows["spender"]
    assert "0.000000" in rows["idle"]


def test_keys_create_takes_a_budget_period(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    config = tmp_path / "tether.toml"
    config.write_text(f'database_url = "{url}"\n')
    runner = CliRunner()
    daily = ["keys", "create", "daily", "--budget", "2", "--budget-period", "day"]
    made = runner.invoke(app, [*daily, "-c", str(config)])
    assert made.exit_code == 0, made.output
    refused = runner.invoke(
        app, ["keys", "create", "weekly", "--budget-period", "week", "-c", str(config)]
    )
    assert refused.exit_code != 0
    assert "week" in refused.output
    engine = open_database(url)
    try:
        keys = {k.name: k for k in KeyStore(engine).list()}
    finally:
        engine.dispose()
    assert set(keys) == {"daily"}
    assert (keys["daily"].budget_usd, keys["daily"].budget_period) == (2.0, "day")
    listed = runner.invoke(app, ["keys", "list", "-c", str(config)], env={"COLUMNS": "250"})
    assert "2/day" in listed.output


def test_a_key_made_before_budget_periods_has_a_total_budget(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        store = KeyStore(engine)
        key, _ = store.create("old", budget_usd=1.0)
        with engine.begin() as conn:  # what migration 4 leaves in rows made before it
            conn.execute(update(api_keys).values(budget_period=None))
        assert store.get(key.id).budget_period == "total"
        with pytest.raises(InvalidRequest, match="budget_period"):
            store.create("bad", budget_period="hourly")
    finally:
        engine.dispose()
