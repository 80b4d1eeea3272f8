"""A real gateway for tests: uvicorn on a free loopback port in a background thread, with a
FakeProvider model (`fake`, priced) and the real local model (`local`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import uvicorn

from tether import Client, FakeProvider, ModelSettings, PriceSettings, Settings
from tether.server.app import create_app
from tether.server.gateway import Gateway


@dataclass
class LiveGateway:
    url: str
    key: str
    gateway: Gateway
    fake: FakeProvider
    settings: Settings

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_settings(tmp_path: Path, **server: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        cache_dir=Path.home() / ".cache" / "tether",
        default_model="fake",
        models={
            "fake": ModelSettings(
                provider="fake",
                price=PriceSettings(input_per_million=1.0, output_per_million=2.0),
            ),
            "local": ModelSettings(provider="llamacpp", upstream_model="gemma-3-270m"),
        },
        server={"max_body_bytes": 64 * 1024, **server},  # type: ignore[arg-type]
    )


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    settings = gateway_settings(tmp_path)
    fake = FakeProvider(respond=lambda call: f"echo: {call.messages[-1].content}")
    client = Client(settings, providers={"fake": fake})
    app = create_app(settings, client=client)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx2.TransportError:
            time.sleep(0.05)
    else:
        pytest.fail("gateway did not start")
    gateway: Gateway = app.state.gateway
    _, key = gateway.keys.create("test")
    try:
        yield LiveGateway(url, key, gateway, fake, settings)
    finally:
        server.should_exit = True
        thread.join(30)
