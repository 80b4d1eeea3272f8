"""`tether keys list` shows what each key has spent, from the request log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from typer.testing import CliRunner

from tether.cli import app
from tether.server.keys import KeyStore
from tether.store.engine import open_database
from tether.store.tables import requests


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
