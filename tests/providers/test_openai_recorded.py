"""OpenAICompatProvider against recorded chat.completions exchanges (tests/fixtures/http)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel

from tether import (
    Capabilities,
    Client,
    Contract,
    ContractViolation,
    ModelSettings,
    PriceSettings,
    Settings,
    Usage,
)
from tether.providers.openai_compat import OpenAICompatProvider

from .helpers import (
    API_KEY,
    EXPECTED_TICKET,
    MESSAGES,
    Generate,
    Replay,
    Ticket,
    embedded_json,
    last_user_message,
)


class Contact(BaseModel):
    name: str
    email: str | None = None


TICKET_SCHEMA = Contract.from_model(Ticket).enforcement_schema()[0]


def provider(recording: Replay, capabilities: Capabilities | None = None) -> OpenAICompatProvider:
    return OpenAICompatProvider(
        "gpt-4o-mini",
        api_key=API_KEY,
        http_client=recording.client(),
        async_http_client=recording.async_client(),
        max_retries=0,
        capabilities=capabilities,
    )


def client_for(recording: Replay, settings: Settings | None = None, **kwargs: Any) -> Client:
    return Client(settings or Settings(), providers={"gpt": provider(recording, **kwargs)})


async def test_strict_schema_round_trip(replay: Callable[[str], Replay], generate: Generate):
    recording = replay("openai_ticket_strict.json")
    with client_for(recording) as client:
        result = await generate(client, MESSAGES, contract=Ticket, model="gpt")
    recording.verify()

    assert result.output == EXPECTED_TICKET
    assert result.usage == Usage(131, 22)
    assert result.model == "gpt-4o-mini-2024-07-18"
    assert result.provider == "openai"
    assert len(result.attempts) == 1
    assert result.attempts[0].finish_reason == "stop"

    request = recording.requests[0]
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    response_format = recording.bodies[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"] == TICKET_SCHEMA


async def test_optional_field_is_sent_required_and_nullable(
    replay: Callable[[str], Replay], generate: Generate
):
    recording = replay("openai_contact_optional.json")
    with client_for(recording) as client:
        result = await generate(
            client,
            "Extract the contact: Ada Lovelace, no email given.",
            contract=Contact,
            model="gpt",
        )
    recording.verify()

    assert result.output == Contact(name="Ada Lovelace", email=None)
    json_schema = recording.bodies[0]["response_format"]["json_schema"]
    # Strict mode wants every field required: the optional one goes out required and nullable,
    # exactly as OpenAI's SDK converts the model.
    assert json_schema["strict"] is True
    assert json_schema["name"] == "Contact"
    assert json_schema["schema"] == to_strict_json_schema(Contact)


async def test_without_json_schema_support_uses_json_object_and_a_system_message(
    replay: Callable[[str], Replay], generate: Generate
):
    recording = replay("openai_ticket_json_object.json")
    capabilities = dataclasses.replace(
        OpenAICompatProvider.default_capabilities, supports_json_schema=False
    )
    with client_for(recording, capabilities=capabilities) as client:
        result = await generate(client, MESSAGES, contract=Ticket, model="gpt")
    recording.verify()

    assert result.output == EXPECTED_TICKET
    body = recording.bodies[0]
    assert body["response_format"]["type"] == "json_object"
    instruction = body["messages"][0]
    assert instruction["role"] == "system"
    assert "JSON" in instruction["content"]  # OpenAI's json_object mode requires the word
    assert embedded_json(instruction["content"]) == TICKET_SCHEMA
    assert body["messages"][1:] == MESSAGES


async def test_repair_over_http(replay: Callable[[str], Replay], generate: Generate):
    recording = replay("openai_ticket_repair.json")
    with client_for(recording) as client:
        result = await generate(client, MESSAGES, contract=Ticket, model="gpt")
    recording.verify()

    assert result.output == EXPECTED_TICKET
    assert len(result.attempts) == 2
    assert result.repairs == 1
    first, second = result.attempts
    assert any("urgent" in e for e in first.errors)
    assert second.errors == ()
    assert result.usage == Usage(131 + 197, 23 + 22)
    assert result.usage == first.usage + second.usage

    repair_body = recording.bodies[1]
    assert repair_body["messages"][-2] == {"role": "assistant", "content": first.raw}
    repair_prompt = last_user_message(repair_body)
    for error in first.errors:
        assert error in repair_prompt


async def test_repair_exhausted_raises_contract_violation(
    replay: Callable[[str], Replay], generate: Generate
):
    recording = replay("openai_ticket_exhausted.json")
    with client_for(recording) as client, pytest.raises(ContractViolation) as caught:
        await generate(client, MESSAGES, contract=Ticket, model="gpt")
    recording.verify()

    err = caught.value
    assert err.contract == "Ticket"
    assert len(err.attempts) == 3  # Settings().max_repairs == 2
    assert all(attempt.errors for attempt in err.attempts)
    first_answer = {**EXPECTED_TICKET.model_dump(), "priority": "urgent"}
    assert err.attempts[0].raw == json.dumps(first_answer, separators=(",", ":"))
    # the last answer was a refusal: its text is what the model said
    assert err.last_raw == "I'm sorry, I can't help with that."
    assert err.last_raw == err.attempts[-1].raw
    # each repair shows only the latest failed output: the context stays bounded
    assert [len(body["messages"]) for body in recording.bodies] == [2, 4, 4]


async def test_price_gives_cost(replay: Callable[[str], Replay], generate: Generate):
    price = PriceSettings(input_per_million=0.15, output_per_million=0.60)
    settings = Settings(
        models={
            "gpt": ModelSettings(
                provider="openai",
                upstream_model="gpt-4o-mini",
                api_key_env="OPENAI_API_KEY",
                price=price,
            )
        }
    )
    recording = replay("openai_ticket_repair.json")
    with client_for(recording, settings) as client:
        result = await generate(client, MESSAGES, contract=Ticket, model="gpt")
    recording.verify()

    per_attempt = [
        (a.usage.input_tokens * 0.15 + a.usage.output_tokens * 0.60) / 1_000_000
        for a in result.attempts
    ]
    assert [a.cost_usd for a in result.attempts] == pytest.approx(per_attempt)
    assert result.cost_usd == pytest.approx((328 * 0.15 + 45 * 0.60) / 1_000_000)
