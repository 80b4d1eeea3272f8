"""Client mistakes are 4xx that name the field, upstream faults are 502/504 naming the upstream,
and every request, whatever happened to it, leaves exactly one request-log row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from sqlalchemy import select

from tests.server.conftest import LiveGateway, upstream_gateway
from tests.upstream import Raw, ScriptedUpstream
from tether import FakeProvider
from tether.messages import ProviderCall
from tether.store.tables import requests

ADMIN = "admin-secret-for-tests"


BOOM = "trigger a bug"


def _echo_or_explode(call: ProviderCall) -> str:
    text = call.messages[-1].content
    if text == BOOM:
        raise RuntimeError("a bug in a provider")
    return f"echo: {text}"


@pytest.fixture
def gw(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[LiveGateway]:
    """`up` on a scripted upstream (to play a broken server); `fake` echoes, but meets BOOM
    with a plain bug."""
    fake = FakeProvider(respond=_echo_or_explode)
    with upstream_gateway(tmp_path, upstream, {"fake": fake}, admin_token=ADMIN) as running:
        yield running


def _chat(gw: LiveGateway, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(
        f"{gw.v1}/chat/completions",
        json={"model": "fake", "messages": [{"role": "user", "content": "hi"}], **body},
        headers={"authorization": f"Bearer {gw.key}"},
        timeout=30,
    )


def _row(gw: LiveGateway, response: httpx2.Response) -> Any:
    request_id = response.headers["x-tether-request-id"]
    assert gw.gateway.log.flush(5)
    with gw.gateway.engine.connect() as conn:
        rows = conn.execute(select(requests).where(requests.c.id == request_id)).all()
    assert len(rows) == 1, f"expected one row for {request_id}, found {len(rows)}"
    return rows[0]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
         "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
         "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": ["plain"]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
         "messages[0].content[0]"),
        ({"max_tokens": 2**70}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"seed": 2**64}, "seed"),
        ({"seed": -1}, "seed"),
        ({"temperature": 1e300}, "temperature"),
    ],
)  # fmt: skip
def test_bad_fields_are_400_naming_the_field(
    gw: LiveGateway, body: dict[str, Any], param: str
) -> None:
    response = _chat(gw, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert _row(gw, response).status == 400


def test_text_parts_are_joined(gw: LiveGateway) -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    response = _chat(gw, {"messages": [{"role": "user", "content": parts}]})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "echo: ab"


def _admin_keys(gw: LiveGateway, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(
        f"{gw.url}/admin/keys",
        json={"name": "k", **body},
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"rpm": 2**63 + 1}, "rpm"),
        ({"rpm": -1}, "rpm"),
        ({"tpm": -5}, "tpm"),
        ({"tpm": 1.5}, "tpm"),
        ({"budget_usd": -0.01}, "budget_usd"),
        ({"budget_usd": 1e300}, "budget_usd"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"models": [""]}, "models"),
        ({"budget_period": "week"}, "budget_period"),
        ({"budget_period": 30}, "budget_period"),
        ({"budget_period": None}, "budget_period"),
    ],
)
def test_admin_key_fields_are_bounded(gw: LiveGateway, body: dict[str, Any], param: str) -> None:
    before = len(gw.gateway.keys.list())
    response = _admin_keys(gw, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert len(gw.gateway.keys.list()) == before


def test_admin_key_fields_in_bounds_are_stored(gw: LiveGateway) -> None:
    response = _admin_keys(gw, {"rpm": 0, "tpm": 2**31 - 1, "budget_usd": 0})
    assert response.status_code == 201, response.text
    assert (response.json()["rpm"], response.json()["budget_usd"]) == (0, 0)
    assert response.json()["budget_period"] == "total"  # left out: the budget never resets


def test_admin_key_budget_period_is_stored(gw: LiveGateway) -> None:
    response = _admin_keys(gw, {"budget_usd": 5, "budget_period": "day"})
    assert response.status_code == 201, response.text
    assert response.json()["budget_period"] == "day"
    assert gw.gateway.keys.get(response.json()["id"]).budget_period == "day"


def test_invalid_json_from_the_upstream_is_502_naming_it(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.append(Raw(200, b'{"choices": [ not json'))
    response = _chat(gw, {"model": "up"})
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_error"
    assert "openai/up" in error["message"]
    assert _row(gw, response).status == 502


def test_an_empty_stream_is_a_502_and_an_error_row(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    # Nothing was sent yet when the upstream failed: the caller gets the HTTP status itself.
    upstream.script.append(Raw(200, b"", "text/event-stream"))  # an empty 200
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.key, max_retries=0)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(
            model="up", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert failed.value.status_code == 502
    assert failed.value.body["code"] == "upstream_error"  # type: ignore[index]
    request_id = failed.value.response.headers["x-tether-request-id"]
    assert gw.gateway.log.flush(5)
    with gw.gateway.engine.connect() as conn:
        row = conn.execute(select(requests).where(requests.c.id == request_id)).one()
    assert row.status == 502
    assert row.error is not None


def test_an_unexpected_error_is_500_with_a_row(gw: LiveGateway) -> None:
    response = _chat(gw, {"messages": [{"role": "user", "content": BOOM}]})
    assert response.status_code == 500
    assert "bug in a provider" not in response.text  # details stay in the gateway log
    row = _row(gw, response)
    assert row.status == 500
    assert "RuntimeError" in row.error


def test_an_unexpected_error_before_a_stream_starts_is_a_500(gw: LiveGateway) -> None:
    response = _chat(gw, {"messages": [{"role": "user", "content": BOOM}], "stream": True})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "bug in a provider" not in response.text
    assert _row(gw, response).status == 500


def test_a_refused_key_leaves_a_row(gw: LiveGateway) -> None:
    response = httpx2.post(
        f"{gw.v1}/chat/completions",
        json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer tk-not-a-real-key"},
        timeout=30,
    )
    assert response.status_code == 401
    assert _row(gw, response).status == 401
