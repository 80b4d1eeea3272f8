"""A stalled database never freezes the gateway: while another connection holds the tables
locked, requests that need no database answer at once; feedback, which does, answers 503 or
succeeds, and never delays the others. Readiness stays truthful through an outage."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import psycopg
import pytest
import sqlalchemy as sa

from tests.conftest import fresh_postgres
from tests.server.conftest import LiveGateway, gateway_settings, live_gateway, serving
from tests.server.test_durability import Proxy
from tether import Client, FakeProvider, Settings
from tether.server.app import create_app
from tether.server.keys import KeyStore
from tether.store import open_database
from tether.store.tables import requests

LOCK_S = 5.0
FAST_S = 0.1  # the one timed assertion: a request that needs no database is never held up
CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}


@contextmanager
def _client(gw: LiveGateway) -> Iterator[httpx2.Client]:
    with httpx2.Client(
        base_url=gw.url, headers={"authorization": f"Bearer {gw.key}"}, timeout=30
    ) as http:
        yield http


def _rows(gw: LiveGateway) -> int:
    with gw.gateway.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(requests)).scalar_one())


def _while_locked(gw: LiveGateway, lock: Callable[[], Callable[[], None]]) -> None:
    """Warm up, take the lock, then time chat and health requests while feedback waits on
    the database in the background; release and check that every row arrives."""
    with _client(gw) as http:
        warm = http.post("/v1/chat/completions", json=CHAT)
        assert warm.status_code == 200
        assert http.get("/healthz").status_code == 200
        assert gw.gateway.log.flush()
        request_id = warm.json()["tether"]["request_id"]

        release = lock()
        feedback: list[int] = []

        def send_feedback() -> None:
            body = {"request_id": request_id, "score": 1}
            feedback.append(http.post("/v1/feedback", json=body).status_code)

        waiting = threading.Thread(target=send_feedback)
        started = time.monotonic()
        waiting.start()
        timings: list[tuple[str, float]] = []
        try:
            for _ in range(20):
                for path in ("/v1/chat/completions", "/healthz"):
                    begin = time.perf_counter()
                    answer = http.get(path) if path == "/healthz" else http.post(path, json=CHAT)
                    timings.append((path, time.perf_counter() - begin))
                    assert answer.status_code == 200, answer.text
                time.sleep(0.1)
            assert time.monotonic() - started < LOCK_S  # every timed request ran under the lock
            ready = http.get("/readyz")
            assert ready.status_code == 200, ready.text
        finally:
            time.sleep(max(0.0, LOCK_S - (time.monotonic() - started)))
            release()
        waiting.join(30)
        slowest = max(timings, key=lambda t: t[1])
        assert slowest[1] < FAST_S, f"{slowest[0]} took {slowest[1]:.3f} s under the lock"
        assert len(feedback) == 1
        assert feedback[0] in (200, 503)
        # Rows written during the lock were spooled and replayed: none is lost.
        deadline = time.monotonic() + 30
        while _rows(gw) < 21 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _rows(gw) >= 21  # the warm-up and 20 chats (feedback may add its own)
        assert gw.gateway.log.stats()["spooled"] == 0


# -- SQLite -------------------------------------------------------------------------------------


def _sqlite_lock(database: Path) -> Callable[[], None]:
    # In WAL mode this shuts out every writer (readers go on: WAL readers never block).
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")

    def release() -> None:
        holder.execute("ROLLBACK")
        holder.close()

    return release


def test_a_locked_sqlite_file_delays_no_request(tmp_path: Path) -> None:
    with live_gateway(gateway_settings(tmp_path)) as gw:
        database = Path(gw.gateway.engine.url.database or "")
        _while_locked(gw, lambda: _sqlite_lock(database))


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_settings(tmp_path: Path, url: str) -> Settings:
    return gateway_settings(tmp_path).model_copy(update={"database_url": url})


def _pg_lock(url: str) -> Callable[[], None]:
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
    holder = psycopg.connect(conninfo)
    holder.execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
    holder.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
    holder.execute("LOCK TABLE feedback IN ACCESS EXCLUSIVE MODE")

    def release() -> None:
        holder.rollback()
        holder.close()

    return release


def test_locked_postgres_tables_delay_no_request(tmp_path: Path) -> None:
    with fresh_postgres() as url, live_gateway(_pg_settings(tmp_path, url)) as gw:
        _while_locked(gw, lambda: _pg_lock(url))


# -- keys ---------------------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    with live_gateway(gateway_settings(tmp_path)) as running:
        yield running


def test_a_revoked_key_is_refused_within_a_second(live: LiveGateway) -> None:
    keys = live.gateway.keys
    _, here = keys.create("revoked here")
    _, elsewhere = keys.create("revoked by another process")
    chat = f"{live.v1}/chat/completions"

    def status(secret: str) -> int:
        headers = {"authorization": f"Bearer {secret}"}
        return httpx2.post(chat, json=CHAT, headers=headers).status_code

    assert status(here) == status(elsewhere) == 200
    revoked = httpx2.delete(f"{live.url}/admin/keys/{keys.verify(here).id}", headers=live.admin)
    assert revoked.status_code == 200
    assert status(here) == 401  # at once: this process made the change
    # Another process (the CLI, another replica) revokes through its own engine.
    other = open_database(str(live.gateway.engine.url.render_as_string(False)))
    try:
        KeyStore(other).revoke(keys.verify(elsewhere).id)
    finally:
        other.dispose()
    started = time.monotonic()
    while status(elsewhere) == 200:
        assert time.monotonic() - started < 1.0, "revocation not seen within a second"
        time.sleep(0.05)
    answer = httpx2.post(chat, json=CHAT, headers={"authorization": f"Bearer {elsewhere}"})
    assert answer.status_code == 401
    assert "revoked" in answer.json()["error"]["message"]


# -- readiness ----------------------------------------------------------------------------------


def test_readiness_through_a_postgres_outage(tmp_path: Path) -> None:
    with fresh_postgres() as direct:
        proxy = Proxy(5432)
        url = sa.make_url(direct).set(port=proxy.port).render_as_string(False)
        try:
            with live_gateway(_pg_settings(tmp_path, url)) as gw, _client(gw) as http:
                assert http.get("/readyz").json()["status"] == "ok"
                proxy.cut()
                assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
                assert gw.gateway.log.flush()
                ready = http.get("/readyz")
                assert ready.status_code == 200  # still serving: keys in memory, rows spooled
                body = ready.json()
                assert body["status"] == "degraded"
                assert body["database"] == "unavailable"
                assert body["log_spooling"] is True
                assert body["log"]["spooled"] >= 1
                assert http.get("/healthz").json()["log"]["spooled"] >= 1
                proxy.restore()
                deadline = time.monotonic() + 30
                while http.get("/readyz").json()["status"] != "ok":
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
                assert http.get("/healthz").json()["log"]["spooled"] == 0
        finally:
            proxy.close()


def test_not_ready_while_no_key_was_ever_loaded_and_the_database_is_down(
    tmp_path: Path,
) -> None:
    with fresh_postgres() as direct:
        proxy = Proxy(5432)
        url = sa.make_url(direct).set(port=proxy.port).render_as_string(False)
        settings = _pg_settings(tmp_path, url)
        try:
            app = create_app(
                settings,
                client=Client(
                    settings, providers={"fake": FakeProvider(respond=lambda call: "ok")}
                ),
            )
            _, secret = app.state.gateway.keys.create("made before the outage")
            proxy.cut()  # the gateway starts, but cannot load its keys
            with serving(app) as base, httpx2.Client(base_url=base, timeout=30) as http:
                headers = {"authorization": f"Bearer {secret}"}
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["status"] == "unavailable"
                assert ready.json()["keys"] == "not loaded"
                refused = http.post("/v1/chat/completions", json=CHAT, headers=headers)
                assert refused.status_code == 503
                assert refused.json()["error"]["code"] == "database_unavailable"
                proxy.restore()
                deadline = time.monotonic() + 10
                while http.get("/readyz").status_code != 200:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                assert http.post("/v1/chat/completions", json=CHAT, headers=headers).is_success
        finally:
            proxy.close()


def test_not_ready_while_the_spool_is_full(tmp_path: Path) -> None:
    with fresh_postgres() as direct:
        proxy = Proxy(5432)
        url = sa.make_url(direct).set(port=proxy.port).render_as_string(False)
        settings = _pg_settings(tmp_path, url)
        settings = settings.model_copy(
            update={"server": settings.server.model_copy(update={"spool_max_mb": 1})}
        )
        big = {"model": "fake", "messages": [{"role": "user", "content": "x" * 50_000}]}
        try:
            with live_gateway(settings) as gw, _client(gw) as http:
                proxy.cut()
                for _ in range(16):  # ~100 KB a row against a 1 MB spool
                    assert http.post("/v1/chat/completions", json=big).status_code == 200
                    assert gw.gateway.log.flush()
                ready = http.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["spool_full"] is True
                assert ready.json()["log"]["dropped"] > 0
                proxy.restore()
                deadline = time.monotonic() + 30
                while http.get("/readyz").status_code != 200:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
        finally:
            proxy.close()
