"""instructor against the gateway in its three OpenAI modes (TOOLS, JSON_SCHEMA, JSON): on a
scripted OpenAI-compatible upstream, where the request that reached it is checked, and on the
local model, where the grammar makes the answer fit."""

from __future__ import annotations

import json

import instructor
import openai
import pytest
from pydantic import BaseModel

from tests.server.conftest import LiveGateway
from tests.upstream import ScriptedUpstream, answer, tool_call

from .conftest import LOCAL_TIMEOUT, TIMEOUT


class Weather(BaseModel):
    """Current weather for a city."""

    city: str
    celsius: float


class City(BaseModel):
    city: str


ASK = [{"role": "user", "content": "Weather in Oslo?"}]
PARIS = [{"role": "user", "content": "What's the weather like in Paris today?"}]


def _client(
    live: LiveGateway, mode: instructor.Mode, timeout: float = TIMEOUT
) -> instructor.Instructor:
    sdk = openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0, timeout=timeout)
    return instructor.from_openai(sdk, mode=mode)


def test_tools_mode_reads_the_forced_call(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(
        answer(calls=[tool_call("call_1", "Weather", {"city": "Oslo", "celsius": 3})])
    )
    found = _client(gw, instructor.Mode.TOOLS).chat.completions.create(
        model="up", messages=ASK, response_model=Weather, max_retries=0
    )
    assert isinstance(found, Weather)
    assert found.model_dump() == Weather(city="Oslo", celsius=3).model_dump()
    (sent,) = upstream.bodies
    assert [t["function"]["name"] for t in sent["tools"]] == ["Weather"]
    assert sorted(sent["tools"][0]["function"]["parameters"]["required"]) == ["celsius", "city"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}


def test_tools_mode_gets_a_repaired_call(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.extend(
        [
            answer(calls=[tool_call("call_1", "Weather", {"city": "Oslo", "celsius": "cold"})]),
            answer(calls=[tool_call("call_2", "Weather", {"city": "Oslo", "celsius": -2.5})]),
        ]
    )
    found = _client(gw, instructor.Mode.TOOLS).chat.completions.create(
        model="up", messages=ASK, response_model=Weather, max_retries=0
    )
    assert isinstance(found, Weather)
    assert found.model_dump() == Weather(city="Oslo", celsius=-2.5).model_dump()
    assert len(upstream.bodies) == 2  # the gateway repaired it; instructor never retried


def test_json_schema_mode_passes_the_schema_through(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.append(answer(json.dumps({"city": "Oslo", "celsius": 3.5})))
    found = _client(gw, instructor.Mode.JSON_SCHEMA).chat.completions.create(
        model="up", messages=ASK, response_model=Weather, max_retries=0
    )
    assert isinstance(found, Weather)
    assert found.model_dump() == Weather(city="Oslo", celsius=3.5).model_dump()
    (sent,) = upstream.bodies
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]
    assert set(schema["properties"]) == {"city", "celsius"}
    assert "tools" not in sent


def test_json_mode_is_json_object(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(answer(json.dumps({"city": "Oslo", "celsius": 4})))
    found = _client(gw, instructor.Mode.JSON).chat.completions.create(
        model="up", messages=ASK, response_model=Weather, max_retries=0
    )
    assert isinstance(found, Weather)
    assert found.model_dump() == Weather(city="Oslo", celsius=4).model_dump()
    (sent,) = upstream.bodies
    assert sent["response_format"] == {"type": "json_object"}
    assert any("celsius" in m["content"] for m in sent["messages"])  # instructor's schema prompt


@pytest.mark.local_model
@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA])
def test_local_model_extracts_the_city(local_gw: LiveGateway, mode: instructor.Mode) -> None:
    found = _client(local_gw, mode, LOCAL_TIMEOUT).chat.completions.create(
        model="local", messages=PARIS, response_model=City, max_retries=0, max_tokens=40
    )
    assert isinstance(found, City)
    assert found.city.strip().lower() == "paris"


@pytest.mark.local_model
def test_local_model_json_mode_with_the_shape_in_the_prompt(local_gw: LiveGateway) -> None:
    # JSON mode constrains the answer to an object; its keys come from the prompt alone, and
    # instructor's schema prompt by itself is more than a 0.5B model follows: show the shape.
    shape = {"role": "system", "content": 'Answer with the city, as in {"city": "Rome"}.'}
    found = _client(local_gw, instructor.Mode.JSON, LOCAL_TIMEOUT).chat.completions.create(
        model="local", messages=[shape, *PARIS], response_model=City, max_retries=0, max_tokens=40
    )
    assert isinstance(found, City)
    assert found.city.strip().lower() == "paris"
