"""The request detail page shows how a request was routed: the policy, its decision and
reason, the fallbacks taken and the model that made each attempt."""

from __future__ import annotations

from pathlib import Path

import httpx2
import openai
from pydantic import TypeAdapter

from tests.server.conftest import gateway_settings, live_gateway
from tether import FakeProvider, ModelSettings
from tether.errors import ProviderUnavailable
from tether.routing.config import RouterSettings

HOSTILE = "<script>alert(1)</script>"


def test_the_detail_page_shows_the_route_and_the_fallbacks(tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path)
    router = TypeAdapter(RouterSettings).validate_python(
        {"policy": "rules", "default": "cheap", "rules": [{"keywords": ["x"], "model": "fake"}]}
    )
    models = {
        **settings.models,
        "cheap": ModelSettings(provider="fake", max_retries=0, fallbacks=["premium"]),
        "premium": ModelSettings(provider="fake"),
    }
    settings = settings.model_copy(update={"models": models, "routers": {HOSTILE: router}})
    down = ProviderUnavailable(provider="fake", model="cheap", url="http://down", reason="down")
    providers = {
        "cheap": FakeProvider([down], model="cheap-up"),
        "premium": FakeProvider(["fine"], model="premium-up"),
    }
    with live_gateway(settings, providers) as live:
        sdk = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)
        reply = sdk.chat.completions.create(
            model=f"router:{HOSTILE}", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content == "fine"
        request_id = reply.id.removeprefix("chatcmpl-")
        assert live.gateway.log.flush(5)
        html = httpx2.get(
            f"{live.url}/dashboard/requests/{request_id}", headers=live.admin, timeout=30
        ).text
    assert "<h2>Routing</h2>" in html
    assert "<dt>policy</dt><dd>rules</dd>" in html
    assert "<dt>decision</dt><dd>cheap</dd>" in html
    assert "<dt>answered by</dt><dd>premium</dd>" in html
    assert "cheap: fake/cheap: cannot reach http://down: down" in html
    assert "model: cheap" in html  # each attempt names its model
    assert "model: premium" in html
    assert HOSTILE not in html  # the router's name is escaped wherever it appears
