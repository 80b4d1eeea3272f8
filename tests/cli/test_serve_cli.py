"""`tether serve --demo` across restarts: the demo key keeps working and is kept owner-only;
a second gateway on the same data directory, or on a taken port, fails before touching keys."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from tether.cli import app as cli
from tether.server.instance_lock import InstanceLock
from tether.server.keys import KeyStore
from tether.store.engine import open_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    for var in ("TETHER_ADMIN_TOKEN", "TETHER_DATA_DIR", "TETHER_CONFIG", "TETHER_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return calls


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    return path


def _serve(config: Path, *extra: str) -> Any:
    args = ["serve", "--config", str(config), "--port", "0", *extra]
    return CliRunner().invoke(cli, args, env={"COLUMNS": "300"})


def _keys(data: Path) -> KeyStore:
    return KeyStore(open_database(f"sqlite:///{data / 'tether.db'}"))


def test_a_restart_keeps_the_demo_key(tmp_path: Path, config: Path, started: list[Any]) -> None:
    demo = ["--demo", str(ROOT / "prompts")]
    first = _serve(config, *demo)
    assert first.exit_code == 0, first.output
    stored = tmp_path / "data" / "demo_key"
    secret = stored.read_text().strip()
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert secret in first.output
    second = _serve(config, *demo)
    assert second.exit_code == 0, second.output
    assert stored.read_text().strip() == secret
    assert "the same as last time" in second.output
    keys = _keys(tmp_path / "data")
    assert keys.verify(secret).name == "demo"  # still valid after the restart
    assert [k.name for k in keys.list()] == ["demo"]  # and no pile of demo keys


def test_a_revoked_demo_key_is_replaced(tmp_path: Path, config: Path, started: list[Any]) -> None:
    demo = ["--demo", str(ROOT / "prompts")]
    assert _serve(config, *demo).exit_code == 0
    stored = tmp_path / "data" / "demo_key"
    old = stored.read_text().strip()
    keys = _keys(tmp_path / "data")
    keys.revoke(keys.verify(old).id)
    again = _serve(config, *demo)
    assert again.exit_code == 0, again.output
    assert stored.read_text().strip() != old
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600


@pytest.fixture
def held(tmp_path: Path) -> Iterator[InstanceLock]:
    lock = InstanceLock(tmp_path / "data")
    lock.acquire()
    yield lock
    lock.release()


def test_a_second_gateway_fails_before_touching_keys(
    tmp_path: Path, config: Path, started: list[Any], held: InstanceLock
) -> None:
    refused = _serve(config, "--demo", str(ROOT / "prompts"))
    assert refused.exit_code != 0
    assert "already running" in refused.output
    assert started == []
    assert not (tmp_path / "data" / "demo_key").exists()
    assert not (tmp_path / "data" / "tether.db").exists()


def test_a_taken_port_fails_before_touching_keys(
    tmp_path: Path, config: Path, started: list[Any]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
            "--demo",
            str(ROOT / "prompts"),
        ]
        refused = CliRunner().invoke(cli, args, env={"COLUMNS": "300"})
    assert refused.exit_code != 0
    assert f"127.0.0.1:{port}" in refused.output
    assert started == []
    assert not (tmp_path / "data" / "demo_key").exists()


def test_demo_keeps_a_registered_version_with_other_content(
    tmp_path: Path, config: Path, started: list[Any]
) -> None:
    folder = tmp_path / "prompts" / "feedback-sentiment"
    folder.mkdir(parents=True)
    spec = (ROOT / "prompts" / "feedback-sentiment" / "1.0.0.yaml").read_text("utf-8")
    (folder / "1.0.0.yaml").write_text(spec, "utf-8")
    assert _serve(config, "--demo", str(tmp_path / "prompts")).exit_code == 0
    (folder / "1.0.0.yaml").write_text(
        spec.replace("Sentiment and confidence", "Sentiment, confidence"), "utf-8"
    )
    again = _serve(config, "--demo", str(tmp_path / "prompts"))
    assert again.exit_code == 0, again.output
    assert "kept the registered version" in again.output


# -- the admin token and proxies -----------------------------------------------------------


def test_serve_makes_the_token_once_then_reuses_it(
    tmp_path: Path, started: list[dict[str, Any]]
) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    runner = CliRunner()
    first = runner.invoke(cli, ["serve", "--config", str(config), "--port", "0"])
    assert first.exit_code == 0, first.output
    token = (tmp_path / "data" / "admin_token").read_text().strip()
    assert token in first.output
    assert "shown once" in first.output

    second = runner.invoke(cli, ["serve", "--config", str(config), "--port", "0"])
    assert second.exit_code == 0, second.output
    assert token not in second.output
    assert str(tmp_path / "data" / "admin_token") in second.output
    assert len(started) == 2
    served = started[-1]["app"].state.auth
    assert served.configured

    configured = runner.invoke(
        cli,
        ["serve", "--config", str(config), "--port", "0"],
        env={"TETHER_ADMIN_TOKEN": "a-configured-admin-token"},
    )
    assert configured.exit_code == 0, configured.output
    assert "from settings" in configured.output
    assert "a-configured-admin-token" not in configured.output
    assert token not in configured.output


def test_serve_refuses_a_readable_token_file(tmp_path: Path, started: list[dict[str, Any]]) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    (tmp_path / "data").mkdir()
    token_file = tmp_path / "data" / "admin_token"
    token_file.write_text("a-token-others-can-read-0123\n")
    os.chmod(token_file, 0o644)
    result = CliRunner().invoke(cli, ["serve", "--config", str(config)])
    assert result.exit_code == 1
    assert "group or others" in result.output
    assert "a-token-others-can-read" not in result.output
    assert started == []


def test_serve_believes_forwarded_headers_only_from_configured_proxies(
    tmp_path: Path, started: list[dict[str, Any]]
) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n')
    runner = CliRunner()
    plain = runner.invoke(cli, ["serve", "--config", str(config), "--port", "0"])
    assert plain.exit_code == 0, plain.output
    assert started[-1]["proxy_headers"] is False  # not even from loopback
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[server]\nforwarded_allow_ips = ["10.0.0.5"]\n'
    )
    proxied = runner.invoke(cli, ["serve", "--config", str(config), "--port", "0"])
    assert proxied.exit_code == 0, proxied.output
    assert started[-1]["proxy_headers"] is True
    assert started[-1]["forwarded_allow_ips"] == "10.0.0.5"
