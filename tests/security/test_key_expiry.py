"""Virtual keys can expire: an expired key is refused with the time it expired, and every way
of setting an expiry (library, admin API, CLI) refuses one that is vague or in the past."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from tests.server.conftest import LiveGateway, gateway_settings, live_gateway
from tether.cli import app
from tether.server.keys import KeyStore, parse_duration, parse_expiry
from tether.store import open_database

CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    with live_gateway(gateway_settings(tmp_path)) as running:
        yield running


def _chat(gw: LiveGateway, secret: str) -> httpx2.Response:
    headers = {"authorization": f"Bearer {secret}"}
    return httpx2.post(f"{gw.v1}/chat/completions", json=CHAT, headers=headers)


def test_a_key_is_refused_once_it_expires(live: LiveGateway) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    key, secret = live.gateway.keys.create("short-lived", expires_at=soon)
    assert key.public()["expires_at"] == soon.isoformat()
    assert _chat(live, secret).status_code == 200
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    refused = _chat(live, secret)
    assert refused.status_code == 401
    assert f"expired at {soon.isoformat()}" in refused.json()["error"]["message"]


def test_a_key_made_already_expired_is_refused(live: LiveGateway) -> None:
    _, secret = live.gateway.keys.create("stale", expires_at=datetime.now(UTC) - timedelta(1))
    assert _chat(live, secret).status_code == 401


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("next tuesday", "ISO 8601"),
        ("2999-01-01T00:00:00", "timezone"),
        ("2001-01-01T00:00:00Z", "past"),
        (12345, "string"),
    ],
)
def test_the_admin_api_refuses_a_bad_expiry_naming_the_field(
    live: LiveGateway, value: object, why: str
) -> None:
    body = {"name": "k", "expires_at": value}
    answer = httpx2.post(f"{live.url}/admin/keys", json=body, headers=live.admin)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "expires_at"
    assert why in error["message"]


def test_the_admin_api_sets_an_expiry(live: LiveGateway) -> None:
    body = {"name": "k", "expires_at": "2999-01-01T00:00:00+02:00"}
    answer = httpx2.post(f"{live.url}/admin/keys", json=body, headers=live.admin)
    assert answer.status_code == 201
    assert answer.json()["expires_at"] == "2998-12-31T22:00:00+00:00"
    assert _chat(live, answer.json()["secret"]).status_code == 200


def test_durations_and_times() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration(" 12H ") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("", "0d", "30", "d", "1.5h", "-3d", "3 days"):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry("2030-01-02T00:00:00Z", now=now) == datetime(2030, 1, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="past"):
        parse_expiry("2030-01-01T00:00:00Z", now=now)


def test_the_cli_creates_keys_that_expire(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "keys.db"}"\n')
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "ci", "--expires-in", "30d", "-c", str(config)])
    assert made.exit_code == 0, made.output
    at = "2999-06-01T12:00:00Z"
    made = runner.invoke(app, ["keys", "create", "fixed", "--expires-at", at, "-c", str(config)])
    assert made.exit_code == 0, made.output
    for bad in (["--expires-in", "soon"], ["--expires-at", "2001-01-01T00:00:00Z"],
                ["--expires-in", "1d", "--expires-at", at]):  # fmt: skip
        refused = runner.invoke(app, ["keys", "create", "x", *bad, "-c", str(config)])
        assert refused.exit_code == 2, refused.output
    engine = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
    try:
        expiries = {k.name: k.expires_at for k in KeyStore(engine).list()}
    finally:
        engine.dispose()
    assert set(expiries) == {"ci", "fixed"}
    in_30_days = datetime.now(UTC) + timedelta(days=30)
    assert expiries["ci"] is not None
    assert abs(expiries["ci"] - in_30_days) < timedelta(minutes=1)
    assert expiries["fixed"] == datetime(2999, 6, 1, 12, tzinfo=UTC)
