"""AnthropicProvider against recorded Messages API exchanges (tests/fixtures/http)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from anthropic.lib._parse._transform import transform_schema
from pydantic import RootModel

from tether import (
    Client,
    ContractViolation,
    Enforcement,
    ModelSettings,
    PriceSettings,
    Settings,
    UnsupportedSchema,
    Usage,
)
from tether.providers.anthropic import AnthropicProvider

from .helpers import (
    API_KEY,
    EXPECTED_TICKET,
    MESSAGES,
    SYSTEM,
    Generate,
    Replay,
    Ticket,
    last_user_message,
    sent_key,
)


class Tags(RootModel[list[str]]):
    pass


def client_for(recording: Replay, settings: Settings | None = None) -> Client:
    provider = AnthropicProvider(
        "claude-haiku-4-5",
        api_key=API_KEY,
        http_client=recording.client(),
        async_http_client=recording.async_client(),
        max_retries=0,
    )
    return Client(settings or Settings(), providers={"claude": provider})


async def test_forced_tool_round_trip(replay: Callable[[str], Replay], generate: Generate):
    recording = replay("anthropic_ticket_tool_use.json")
    with client_for(recording) as client:
        result = await generate(client, MESSAGES, contract=Ticket, model="claude")
    recording.verify()

    assert result.output == EXPECTED_TICKET
    assert result.usage == Usage(612, 58)
    assert result.model == "claude-haiku-4-5-20251001"
    assert result.provider == "anthropic"
    assert len(result.attempts) == 1
    assert result.attempts[0].finish_reason == "stop"
    assert json.loads(result.raw) == EXPECTED_TICKET.model_dump()

    assert sent_key(recording.requests[0]) == API_KEY
    body = recording.bodies[0]
    # What Anthropic's own SDK sends for the model (it drops the type beside an enum).
    assert [tool["input_schema"] for tool in body["tools"]] == [transform_schema(Ticket)]
    assert body["tool_choice"] == {"type": "tool", "name": "Ticket"}
    assert body["system"] == SYSTEM
    assert [m["role"] for m in body["messages"]] == ["user"]


async def test_repair_over_http(replay: Callable[[str], Replay], generate: Generate):
    price = PriceSettings(input_per_million=1.0, output_per_million=5.0)
    settings = Settings(
        models={
            "claude": ModelSettings(
                provider="anthropic", api_key_env="ANTHROPIC_API_KEY", price=price
            )
        }
    )
    recording = replay("anthropic_ticket_repair.json")
    with client_for(recording, settings) as client:
        result = await generate(client, MESSAGES, contract=Ticket, model="claude")
    recording.verify()

    assert result.output == EXPECTED_TICKET
    assert len(result.attempts) == 2
    first, second = result.attempts
    assert any("urgent" in e for e in first.errors)
    assert second.errors == ()
    assert result.usage == Usage(612 + 689, 59 + 58)
    assert result.cost_usd == pytest.approx(((612 + 689) * 1.0 + (59 + 58) * 5.0) / 1_000_000)

    repair_body = recording.bodies[1]
    assert repair_body["system"] == SYSTEM
    assert repair_body["messages"][-2] == {"role": "assistant", "content": first.raw}
    for error in first.errors:
        assert error in last_user_message(repair_body)


async def test_repair_exhausted_raises_contract_violation(
    replay: Callable[[str], Replay], generate: Generate
):
    recording = replay("anthropic_ticket_repair.json")  # the first answer is invalid
    with client_for(recording) as client, pytest.raises(ContractViolation) as caught:
        await generate(client, MESSAGES, contract=Ticket, model="claude", max_repairs=0)

    assert len(recording.requests) == 1
    assert len(caught.value.attempts) == 1
    assert json.loads(caught.value.last_raw)["priority"] == "urgent"


NON_OBJECT_ROOTS = pytest.mark.parametrize(
    "contract",
    [Tags, {"type": "array", "items": {"type": "string"}}, {"type": "string"}],
    ids=["root-model", "array-schema", "string-schema"],
)


@NON_OBJECT_ROOTS
async def test_non_object_root_is_refused_before_any_request(
    replay: Callable[[str], Replay], generate: Generate, contract: Any
):
    recording = replay("anthropic_ticket_tool_use.json")
    with client_for(recording) as client, pytest.raises(UnsupportedSchema) as caught:
        await generate(client, "List the tags.", contract=contract, model="claude")
    assert recording.requests == []

    err = caught.value
    assert err.provider == "anthropic"
    assert err.model == "claude-haiku-4-5"
    assert [(p.keyword, p.pointer) for p in err.problems] == [("type", "")]
    assert "root must be an object" in str(err)


@NON_OBJECT_ROOTS
def test_preflight_reports_a_non_object_root(replay: Callable[[str], Replay], contract: Any):
    recording = replay("anthropic_ticket_tool_use.json")
    with client_for(recording) as client:
        report = client.preflight(contract, model="claude")
    assert recording.requests == []

    assert not report.ok
    assert report.provider == "anthropic"
    assert [(p.keyword, p.pointer) for p in report.problems] == [("type", "")]
    assert any(
        row.keyword == "type" and row.enforcement is Enforcement.UNSUPPORTED
        for row in report.keywords
    )
    with pytest.raises(UnsupportedSchema):
        report.raise_for_problems()


def test_preflight_of_an_object_root(replay: Callable[[str], Replay]):
    recording = replay("anthropic_ticket_tool_use.json")
    with client_for(recording) as client:
        report = client.preflight(Ticket, model="claude")
    assert recording.requests == []
    assert report.ok
    assert report.enforcement == "tool use"
    # A strict-shaped schema goes out as a strict tool: its keywords are enforced upstream.
    assert {row.enforcement for row in report.keywords} == {Enforcement.DECODING}
