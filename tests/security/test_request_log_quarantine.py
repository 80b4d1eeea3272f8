"""A row the database refuses for good never blocks the request log: NUL is stored faithfully,
a truly unstorable row goes to the dead-letter file while the others are stored, and a
poisoned spool file still drains, across restarts too. Counts show in /healthz."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from tests.conftest import fresh_postgres
from tests.server.conftest import gateway_settings, live_gateway
from tether.observe.request_log import RequestLog, RequestRecord
from tether.observe.spool import DEAD_LETTER
from tether.store import open_database
from tether.store.tables import requests

POISONS = {
    "lone-surrogate": {"response": "\ud800 cannot be UTF-8"},
    "too-long": {"prompt_version": "9" * 101},  # String(100)
}


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    found = open_database(pg_url)
    try:
        yield found
    finally:
        found.dispose()


def _record(n: int, **fields: Any) -> RequestRecord:
    base = RequestRecord(
        id=f"req_{n:03}", at=datetime.now(UTC), endpoint="chat.completions", key_id=None,
        model="fake", provider="fake", upstream_model="fake", prompt=None, prompt_version=None,
        status=200, error=None, stream=False, messages="[]", response=f"answer {n}",
        output=None, contract=None, valid=None, attempts=None, input_tokens=1,
        output_tokens=1, cost_usd=0.0, latency_ms=1.0,
    )  # fmt: skip
    return replace(base, **fields)


def _batch(poison: dict[str, str]) -> list[RequestRecord]:
    return [_record(n, **(poison if n == 15 else {})) for n in range(31)]


def _stored(engine: sa.Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(requests.c.id, requests.c.response))
        return {row.id: row.response for row in rows}


def _dead_letters(spool: Path) -> list[dict[str, Any]]:
    path = spool / DEAD_LETTER
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_31_rows_with_a_nul_are_all_stored_faithfully(engine: sa.Engine, tmp_path: Path) -> None:
    log = RequestLog(engine, spool_dir=tmp_path / "spool")
    for record in _batch({"response": "before\x00after", "error": "\x00"}):
        log.record(record)
    log.start()  # one batch of 31: the NUL must not fail the 30 others, nor itself
    assert log.flush()
    log.close()
    stored = _stored(engine)
    assert len(stored) == 31
    assert stored["req_015"] == "before\x00after"
    assert log.stats() == {"pending": 0, "spooled": 0, "quarantined": 0, "dropped": 0}


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
def test_an_unstorable_row_is_quarantined_and_the_30_others_stored(
    engine: sa.Engine, tmp_path: Path, poison: dict[str, str]
) -> None:
    spool = tmp_path / "spool"
    log = RequestLog(engine, spool_dir=spool)
    for record in _batch(poison):
        log.record(record)
    log.start()
    assert log.flush()
    log.close()
    stored = _stored(engine)
    assert len(stored) == 30
    assert "req_015" not in stored
    (dead,) = _dead_letters(spool)
    assert dead["row"]["id"] == "req_015"
    field, value = next(iter(poison.items()))
    assert dead["row"][field] == value  # kept exactly, for someone to repair
    assert log.stats() == {"pending": 0, "spooled": 0, "quarantined": 1, "dropped": 0}
    assert not log.spool.files()


def test_a_poisoned_spool_drains_after_a_restart(
    engine: sa.Engine, pg_url: str, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    # The first process sees the database down: every row goes to the spool.
    down = sa.create_engine(sa.make_url(pg_url).set(port=1), connect_args={"connect_timeout": 1})
    first = RequestLog(down, spool_dir=spool)
    for record in _batch(POISONS["lone-surrogate"]):
        first.record(record)
    first.start()
    assert first.flush()
    first.close()
    down.dispose()
    assert first.stats()["spooled"] == 31
    # A torn or foreign line in a spool file must not hold the file up either.
    (spool / "0-0.jsonl").write_text("{not json\n", encoding="utf-8")

    second = RequestLog(engine, spool_dir=spool)
    assert second.stats()["spooled"] == 32  # counted from disk at start
    second.start()
    second.close()  # drains the spool before returning
    assert len(_stored(engine)) == 30
    assert [d["row"]["id"] if d["row"] else d["line"] for d in _dead_letters(spool)] == [
        "{not json",
        "req_015",
    ]
    assert second.stats() == {"pending": 0, "spooled": 0, "quarantined": 2, "dropped": 0}
    assert not second.spool.files()


def test_counts_show_in_healthz(pg_url: str, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path).model_copy(update={"database_url": pg_url})
    with live_gateway(settings) as gw:
        headers = {"authorization": f"Bearer {gw.key}"}
        for n in range(30):
            content = "a NUL \x00 in the middle" if n == 7 else f"hello {n}"
            body = {"model": "fake", "messages": [{"role": "user", "content": content}]}
            answer = httpx2.post(f"{gw.v1}/chat/completions", json=body, headers=headers)
            assert answer.status_code == 200
        gw.gateway.log.record(_record(999, **POISONS["too-long"]))
        assert gw.gateway.log.flush()
        health = httpx2.get(f"{gw.url}/healthz").json()
        assert health == {
            "status": "ok",
            "log": {"pending": 0, "spooled": 0, "quarantined": 1, "dropped": 0},
        }
        responses = _stored(gw.gateway.engine).values()
        assert "echo: a NUL \x00 in the middle" in responses
        assert len(responses) == 30
