"""The request log survives a database outage and a SIGTERM: one row per answered request."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

from tests.conftest import PG_ADMIN_URL, fresh_postgres
from tether import Client, FakeProvider, ModelSettings, Settings
from tether.server.app import create_app

from .conftest import free_port


class Proxy:
    """A TCP proxy to PostgreSQL that can be cut (every connection dropped, new ones refused)
    and restored: to the gateway, the database is gone and then back."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.up = True
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up = False
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._conns.clear()

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
        self.cut()
        self._server.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    with fresh_postgres() as url:
        yield sa.make_url(url).database or ""


def _count(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM requests")).scalar_one()
        distinct = conn.execute(sa.text("SELECT count(DISTINCT id) FROM requests")).scalar_one()
    engine.dispose()
    return total, distinct


def test_database_outage_loses_and_duplicates_nothing(tmp_path: Path, pg_database: str) -> None:
    proxy = Proxy(5432)
    url = sa.make_url(PG_ADMIN_URL).set(database=pg_database, port=proxy.port)
    settings = Settings(
        data_dir=tmp_path,
        database_url=url.render_as_string(hide_password=False),
        default_model="fake",
        models={"fake": ModelSettings(provider="fake")},
    )
    fake = FakeProvider(respond=lambda call: "ok")
    app = create_app(settings, client=Client(settings, providers={"fake": fake}))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            httpx2.get(f"{base}/healthz")
            break
        except httpx2.TransportError:
            time.sleep(0.05)
    _, key = app.state.gateway.keys.create("outage")
    answered = 0
    body = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}
    with httpx2.Client(base_url=base, headers={"authorization": f"Bearer {key}"}) as http:

        def send(n: int) -> None:
            nonlocal answered
            for _ in range(n):
                if http.post("/v1/chat/completions", json=body).status_code == 200:
                    answered += 1

        send(20)
        assert app.state.gateway.log.flush()
        proxy.cut()
        send(30)  # the database is gone: answers go on, rows go to the spool
        assert app.state.gateway.log.flush()
        assert list((tmp_path / "spool").glob("*.jsonl"))
        ready = http.get("/readyz")  # still serving: keys from memory, rows to the spool
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        proxy.restore()
        send(10)
        deadline = time.monotonic() + 30
        while list((tmp_path / "spool").glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.2)
    server.should_exit = True
    thread.join(30)
    proxy.close()
    assert answered == 60
    direct = (
        sa.make_url(PG_ADMIN_URL).set(database=pg_database).render_as_string(hide_password=False)
    )
    assert _count(direct) == (60, 60)


def _slow_upstream(port: int) -> uvicorn.Server:
    upstream = FastAPI()

    @upstream.post("/v1/chat/completions")
    async def complete(request: Request) -> JSONResponse:
        import asyncio

        await asyncio.sleep(2.0)
        return JSONResponse(
            {
                "id": "up-1",
                "object": "chat.completion",
                "created": 0,
                "model": "slow",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "done"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
            }
        )

    server = uvicorn.Server(uvicorn.Config(upstream, port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    return server


def test_sigterm_finishes_in_flight_requests_and_flushes_every_row(tmp_path: Path) -> None:
    upstream_port, gateway_port = free_port(), free_port()
    upstream = _slow_upstream(upstream_port)
    config = tmp_path / "tether.toml"
    database = tmp_path / "tether.db"
    config.write_text(
        f"""
default_model = "slow"
data_dir = "{tmp_path}"
database_url = "sqlite:///{database}"
[models.slow]
provider = "openai"
base_url = "http://127.0.0.1:{upstream_port}/v1"
upstream_model = "slow"
max_retries = 0
"""
    )
    key = (
        subprocess.run(
            [sys.executable, "-m", "tether", "keys", "create", "sigterm", "--config", str(config)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether",
            "serve",
            "--port",
            str(gateway_port),
            "--config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{gateway_port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        body = {"messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {key}"}

        def call(_: int) -> int:
            return httpx2.post(
                f"{base}/v1/chat/completions", json=body, headers=headers, timeout=30
            ).status_code

        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(call, n) for n in range(12)]
            time.sleep(1.0)  # every request is now in flight upstream
            process.send_signal(signal.SIGTERM)
            statuses = [f.result() for f in futures]
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
        upstream.should_exit = True
    assert statuses == [200] * 12
    assert _count(f"sqlite:///{database}") == (12, 12)
