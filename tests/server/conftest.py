"""A real gateway for tests: uvicorn on a free loopback port in a background thread, with a
FakeProvider model (`fake`, priced), the real local model (`local`) and the bundled embedder
(`local-embed`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import uvicorn
from starlette.types import ASGIApp

from tests.conftest import FAST_RETRIES
from tests.upstream import ScriptedUpstream
from tether import Client, FakeProvider, ModelSettings, PriceSettings, Settings
from tether.providers.base import Provider
from tether.server.app import create_app
from tether.server.gateway import Gateway
from tether.settings import LOCAL_MODEL_UPSTREAM, LOCAL_SMALL_MODEL_UPSTREAM

ADMIN_TOKEN = "test-admin-token-4f1c9a"


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

    @property
    def admin(self) -> dict[str, str]:
        """Headers carrying the admin token."""
        token = self.settings.server.admin_token
        assert token is not None
        return {"authorization": f"Bearer {token.get_secret_value()}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_settings(tmp_path: Path, **server: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        cache_dir=Path.home() / ".cache" / "tether",
        calls=FAST_RETRIES,
        default_model="fake",
        models={
            "fake": ModelSettings(
                provider="fake",
                price=PriceSettings(input_per_million=1.0, output_per_million=2.0),
            ),
            "local": ModelSettings(provider="llamacpp", upstream_model=LOCAL_MODEL_UPSTREAM),
            "local-small": ModelSettings(
                provider="llamacpp", upstream_model=LOCAL_SMALL_MODEL_UPSTREAM
            ),
            "local-embed": ModelSettings(provider="local_embed"),
        },
        server={"max_body_bytes": 64 * 1024, "admin_token": ADMIN_TOKEN, **server},  # type: ignore[arg-type]
    )


@contextmanager
def serving(app: ASGIApp, *, ready_path: str = "/healthz") -> Iterator[str]:
    """Run `app` on uvicorn in a background thread on a free loopback port; yield its URL
    once `ready_path` answers (any status), and stop it afterwards."""
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
            httpx2.get(f"{url}{ready_path}", timeout=1)
            break
        except httpx2.TransportError:
            time.sleep(0.05)
    else:
        pytest.fail("server did not start")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def live_gateway(
    settings: Settings, providers: dict[str, Provider] | None = None
) -> Iterator[LiveGateway]:
    """A running gateway on `settings`; the `fake` model echoes unless `providers` says
    otherwise. A key named `test` is created for it."""
    fake = FakeProvider(respond=lambda call: f"echo: {call.messages[-1].content}")
    client = Client(settings, providers={"fake": fake, **(providers or {})})
    app = create_app(settings, client=client)
    with serving(app) as url:
        gateway: Gateway = app.state.gateway
        _, key = gateway.keys.create("test")
        found = client.provider("fake")
        yield LiveGateway(url, key, gateway, found if isinstance(found, FakeProvider) else fake,
                          settings)  # fmt: skip


@contextmanager
def upstream_gateway(
    tmp_path: Path,
    upstream: ScriptedUpstream,
    providers: dict[str, Provider] | None = None,
    **server: object,
) -> Iterator[LiveGateway]:
    """A running gateway with the usual models plus `up`: an OpenAI provider on `upstream`,
    one attempt per call (a retry would hide a gateway error)."""
    settings = gateway_settings(tmp_path, **server)
    model = ModelSettings(provider="openai", base_url=upstream.base_url, max_retries=0)
    models = {**settings.models, "up": model}
    with live_gateway(settings.model_copy(update={"models": models}), providers) as running:
        yield running


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveGateway]:
    with live_gateway(gateway_settings(tmp_path)) as running:
        yield running


@pytest.fixture
def cached(tmp_path: Path) -> Iterator[LiveGateway]:
    """A running gateway whose response cache is on (exact matches)."""
    from tether.cache.config import CacheSettings

    settings = gateway_settings(tmp_path).model_copy(update={"cache": CacheSettings(mode="exact")})
    with live_gateway(settings) as running:
        yield running
