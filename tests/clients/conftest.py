"""Gateways for the client-library tests: one in front of a scripted OpenAI-compatible upstream
(`up`) beside the `fake` model, and one shared by the local-model tests (`local`, loaded once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import LiveGateway, gateway_settings, live_gateway, upstream_gateway
from tests.upstream import ScriptedUpstream

# Every client here is told to make one attempt: a retry would hide a gateway error.
TIMEOUT = 60.0
LOCAL_TIMEOUT = 600.0


@pytest.fixture
def gw(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[LiveGateway]:
    """The gateway with `up`, an OpenAI provider on the scripted upstream, and `fake`."""
    with upstream_gateway(tmp_path, upstream) as running:
        yield running


@pytest.fixture(scope="session")
def local_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    """One gateway for every local-model test in this folder, so the model loads once."""
    with live_gateway(gateway_settings(tmp_path_factory.mktemp("clients-local"))) as running:
        yield running
