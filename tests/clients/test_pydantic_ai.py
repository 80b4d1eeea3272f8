"""pydantic-ai agents on the gateway (OpenAIChatModel + OpenAIProvider): the default output
(a tool the model must call), NativeOutput (a JSON schema response format) and an agent loop
that calls a tool once, feeds its result back and answers; on a scripted OpenAI-compatible
upstream, where each request that reached it is checked, and on the local model."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.messages import ToolCallPart, ToolReturnPart
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from pydantic_ai.settings import ModelSettings

from tests.server.conftest import LiveGateway
from tests.upstream import ScriptedUpstream, answer, tool_call
from tether.messages import ToolCall


class Weather(BaseModel):
    """Current weather for a city."""

    city: str
    celsius: float


class City(BaseModel):
    """The city a question is about."""

    city: str


PARIS = "What's the weather like in Paris today?"


def _model(live: LiveGateway, name: str) -> OpenAIChatModel:
    return OpenAIChatModel(name, provider=OpenAIProvider(base_url=live.v1, api_key=live.key))


def test_default_output_is_a_required_tool(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(
        answer(calls=[tool_call("call_1", "final_result", {"city": "Oslo", "celsius": 3})])
    )
    agent = Agent(_model(gw, "up"), output_type=Weather)
    result = agent.run_sync("Weather in Oslo?")
    assert result.output == Weather(city="Oslo", celsius=3)
    (sent,) = upstream.bodies
    assert [t["function"]["name"] for t in sent["tools"]] == ["final_result"]
    assert sent["tool_choice"] == "required"
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (11, 7)


def test_native_output_is_a_json_schema(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(answer(json.dumps({"city": "Oslo", "celsius": -1.5})))
    agent = Agent(_model(gw, "up"), output_type=NativeOutput(Weather))
    result = agent.run_sync("Weather in Oslo?")
    assert result.output == Weather(city="Oslo", celsius=-1.5)
    (sent,) = upstream.bodies
    spec = sent["response_format"]
    assert spec["type"] == "json_schema"
    assert set(spec["json_schema"]["schema"]["properties"]) == {"city", "celsius"}
    assert "tools" not in sent


def test_agent_loop_calls_a_tool_once_and_answers(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.extend(
        [
            answer(calls=[tool_call("call_1", "temperature", {"city": "Oslo"})]),
            answer("It is 3 C in Oslo."),
        ]
    )
    agent = Agent(_model(gw, "up"))
    asked: list[str] = []

    @agent.tool_plain
    def temperature(city: str) -> str:
        """The temperature in a city now."""
        asked.append(city)
        return "3 C"

    result = agent.run_sync("How warm is Oslo?")
    assert result.output == "It is 3 C in Oslo."
    assert asked == ["Oslo"]
    first, second = upstream.bodies
    assert [t["function"]["name"] for t in first["tools"]] == ["temperature"]
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": "call_1", "content": "3 C"}
    returns = [p for m in result.all_messages() for p in m.parts if isinstance(p, ToolReturnPart)]
    assert [(r.tool_name, r.content) for r in returns] == [("temperature", "3 C")]


async def test_streamed_text_and_streamed_tool_output(gw: LiveGateway) -> None:
    gw.fake.enqueue("It is cold in Oslo today.")
    async with Agent(_model(gw, "fake")).run_stream("Weather in Oslo?") as run:
        pieces = [piece async for piece in run.stream_text(delta=True, debounce_by=None)]
    assert len(pieces) > 1
    assert "".join(pieces) == "It is cold in Oslo today."
    gw.fake.enqueue(ToolCall("call_1", "final_result", json.dumps({"city": "Oslo", "celsius": 3})))
    async with Agent(_model(gw, "fake"), output_type=Weather).run_stream("Oslo?") as run:
        found = await run.get_output()
    assert found == Weather(city="Oslo", celsius=3)
    tools = gw.fake.calls[-1].tools
    assert tools is not None
    assert tools.required


@pytest.mark.local_model
@pytest.mark.parametrize("native", [False, True])
def test_local_model_output(local_gw: LiveGateway, native: bool) -> None:
    agent = Agent(
        _model(local_gw, "local"),
        output_type=NativeOutput(City) if native else City,
        model_settings=ModelSettings(max_tokens=40, timeout=600),
    )
    result = agent.run_sync(PARIS)
    assert isinstance(result.output, City)
    assert result.output.city.strip().lower() == "paris"


class Report(BaseModel):
    city: str
    weather: str


@pytest.mark.local_model
def test_local_agent_loop(local_gw: LiveGateway) -> None:
    # Left to `auto`, the 0.5B model may write the call as plain text: offer the tool and
    # the output tool as the only choices (one call a turn), so each turn is a call.
    agent = Agent(
        _model(local_gw, "local"),
        output_type=Report,
        model_settings=ModelSettings(
            max_tokens=60,
            timeout=600,
            parallel_tool_calls=False,
            tool_choice=["get_weather", "final_result"],
        ),
    )
    asked: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        asked.append(city)
        return "21 C and sunny"

    result = agent.run_sync(PARIS)
    calls = [p for m in result.all_messages() for p in m.parts if isinstance(p, ToolCallPart)]
    assert [c.tool_name for c in calls] == ["get_weather", "final_result"]
    assert [c.strip().lower() for c in asked] == ["paris"]
    assert isinstance(result.output, Report)
    assert result.output.city.strip().lower() == "paris"
    assert result.output.weather
