"""The gateway through the official openai SDK: chat, streaming, structured output, errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from pydantic import BaseModel
from sqlalchemy import select

from tether.store.tables import requests

from .conftest import LiveGateway


def sdk(live: LiveGateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.v1, api_key=key or live.key, max_retries=0)


def rows(live: LiveGateway) -> list[Any]:
    assert live.gateway.log.flush()
    with live.gateway.engine.connect() as conn:
        return list(conn.execute(select(requests).order_by(requests.c.at)))


def test_chat_completion(live: LiveGateway) -> None:
    raw = sdk(live).chat.completions.with_raw_response.create(
        model="fake", messages=[{"role": "user", "content": "hello there"}]
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == "echo: hello there"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 3)
    request_id = raw.headers["x-tether-request-id"]
    assert reply.id == f"chatcmpl-{request_id}"
    (row,) = rows(live)
    assert row.id == request_id  # the gateway's id, never the provider's
    assert row.status == 200
    assert json.loads(row.messages) == [{"role": "user", "content": "hello there"}]
    assert row.response == "echo: hello there"
    assert (row.input_tokens, row.output_tokens) == (2, 3)
    assert row.cost_usd == pytest.approx((2 * 1.0 + 3 * 2.0) / 1e6)
    assert row.key_id is not None
    assert row.latency_ms > 0


def test_streaming(live: LiveGateway) -> None:
    stream = sdk(live).chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me please"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    (row,) = rows(live)
    assert row.stream is True
    assert row.response == "echo: stream me please"


class City(BaseModel):
    city: str
    country: str


def test_structured_output_with_parse(live: LiveGateway) -> None:
    live.fake.enqueue('{"city": "Lyon", "country": "France"}')
    completion = sdk(live).chat.completions.parse(
        model="fake", messages=[{"role": "user", "content": "Lyon"}], response_format=City
    )
    assert completion.choices[0].message.parsed == City(city="Lyon", country="France")
    spec = live.fake.calls[-1].output
    assert spec is not None
    assert spec.schema["properties"]["city"] == {"title": "City", "type": "string"}
    (row,) = rows(live)
    assert row.valid is True
    assert row.contract == "City"
    assert json.loads(row.output) == {"city": "Lyon", "country": "France"}


def test_structured_output_is_repaired_before_it_is_returned(live: LiveGateway) -> None:
    live.fake.enqueue('{"city": "Lyon"}', '{"city": "Lyon", "country": "France"}')
    reply = sdk(live).chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "Lyon"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": City.model_json_schema()},
        },
    )
    assert json.loads(reply.choices[0].message.content or "") == {
        "city": "Lyon",
        "country": "France",
    }
    (row,) = rows(live)
    assert len(json.loads(row.attempts)) == 2


def test_unvalidated_output_is_never_returned(live: LiveGateway) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as err:
        sdk(live).chat.completions.create(
            model="fake",
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_object"},
        )
    assert err.value.body["code"] == "contract_violation"  # type: ignore[index]
    (row,) = rows(live)
    assert row.status == 422
    assert row.valid is False
    assert len(json.loads(row.attempts)) == 3


def test_streaming_structured_output_is_validated_first(live: LiveGateway) -> None:
    live.fake.enqueue("not json", '{"city": "Lyon", "country": "France"}')
    stream = sdk(live).chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "Lyon"}],
        response_format={"type": "json_object"},
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert json.loads(text) == {"city": "Lyon", "country": "France"}


def test_errors_in_openai_format(live: LiveGateway) -> None:
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(openai.AuthenticationError):
        sdk(live, key="tk-not-a-real-key").chat.completions.create(model="fake", messages=messages)
    with pytest.raises(openai.NotFoundError) as err:
        sdk(live).chat.completions.create(model="gpt-nope", messages=messages)
    assert err.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        sdk(live).chat.completions.create(model="fake", messages=[])
    assert bad.value.body["param"] == "messages"  # type: ignore[index]
    with pytest.raises(openai.APIStatusError) as big:
        sdk(live).chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "x" * 100_000}]
        )
    assert big.value.status_code == 413


@dataclass
class _Refused:
    answered: list[int]
    body: object


def _calls_until_refused(client: openai.OpenAI, messages: list[dict[str, str]]) -> _Refused:
    """Small calls until one is refused for rate or money: how many were answered first."""
    answered: list[int] = []
    for number in range(10):
        try:
            client.chat.completions.create(model="fake", messages=messages, max_tokens=10)  # type: ignore[arg-type]
        except openai.RateLimitError as refused:
            return _Refused(answered, refused.body)
        answered.append(number)
    raise AssertionError("never refused")


def test_key_scopes_limits_budget_and_revocation(live: LiveGateway) -> None:
    keys = live.gateway.keys
    messages = [{"role": "user", "content": "hi"}]
    _, scoped = keys.create("scoped", models=["local"])
    with pytest.raises(openai.PermissionDeniedError):
        sdk(live, scoped).chat.completions.create(model="fake", messages=messages)
    _, limited = keys.create("limited", rpm=1)
    sdk(live, limited).chat.completions.create(model="fake", messages=messages)
    with pytest.raises(openai.RateLimitError) as err:
        sdk(live, limited).chat.completions.create(model="fake", messages=messages)
    assert int(err.value.response.headers["retry-after"]) >= 1
    # A request holds its maximum (input + max_tokens at the model's price, about $2.2e-5
    # here) before the call: the budget admits requests while that still fits.
    _, poor = keys.create("poor", budget_usd=0.00003)
    refused = _calls_until_refused(sdk(live, poor), messages)
    assert refused.body["code"] == "budget_exhausted"  # type: ignore[index]
    assert 1 <= len(refused.answered) <= 3
    revoked_key, revoked = keys.create("revoked")
    sdk(live, revoked).chat.completions.create(model="fake", messages=messages)
    keys.revoke(revoked_key.id)
    with pytest.raises(openai.AuthenticationError):
        sdk(live, revoked).chat.completions.create(model="fake", messages=messages)


def test_models_and_embeddings(live: LiveGateway) -> None:
    names = {m.id for m in sdk(live).models.list()}
    assert names == {"fake", "local", "local-small", "local-embed"}
    _, scoped = live.gateway.keys.create("scoped", models=["fake"])
    assert {m.id for m in sdk(live, scoped).models.list()} == {"fake"}
    result = sdk(live).embeddings.create(model="fake", input=["abc", "aab"])
    assert [d.embedding[:3] for d in result.data] == [[1.0, 1.0, 1.0], [2.0, 1.0, 0.0]]
    with pytest.raises(openai.BadRequestError, match="no embeddings"):
        sdk(live).embeddings.create(model="local", input="x")


def test_secrets_never_leave_the_gateway(live: LiveGateway) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        sdk(live).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert live.key not in str(err.value.body)
    for row in rows(live):
        assert live.key not in " ".join(str(v) for v in row)
