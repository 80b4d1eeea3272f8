"""The official openai SDK's tool helpers against the gateway, beside what tests/server
(test_tool_calls.py: required, parallel, streamed deltas, n on the fake model) and tests/tools
(test_openai_tools.py on an upstream, test_local_tools.py on the local model) cover:
`pydantic_function_tool` with `.parse()`, parallel calls and streamed calls from an
OpenAI-compatible upstream, streamed calls with `n`, and logprobs in a local stream."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.server.conftest import LiveGateway
from tests.upstream import ScriptedUpstream, answer, tool_call
from tether.messages import ToolCall

from .conftest import LOCAL_TIMEOUT, TIMEOUT


class GetWeather(BaseModel):
    """Current weather for a city."""

    city: str


class GetTime(BaseModel):
    """Local time in a city."""

    city: str


TOOLS: Any = [openai.pydantic_function_tool(GetWeather), openai.pydantic_function_tool(GetTime)]
PARIS: Any = [{"role": "user", "content": "What's the weather like in Paris today?"}]
BOTH: Any = [{"role": "user", "content": "Weather and local time in Paris?"}]


def _sdk(live: LiveGateway, timeout: float = TIMEOUT) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0, timeout=timeout)


def test_parse_reads_strict_pydantic_tools(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(answer(calls=[tool_call("call_1", "GetWeather", {"city": "Paris"})]))
    reply = _sdk(gw).chat.completions.parse(model="up", messages=PARIS, tools=TOOLS)
    (made,) = reply.choices[0].message.tool_calls or []
    assert made.function.parsed_arguments == GetWeather(city="Paris")
    (sent,) = upstream.bodies
    assert [t["function"]["strict"] for t in sent["tools"]] == [True, True]
    assert sent["tools"][0]["function"]["parameters"]["additionalProperties"] is False


def test_parallel_calls_from_an_upstream(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(
        answer(
            calls=[
                tool_call("call_w", "GetWeather", {"city": "Paris"}),
                tool_call("call_t", "GetTime", {"city": "Paris"}),
            ]
        )
    )
    reply = _sdk(gw).chat.completions.parse(
        model="up", messages=BOTH, tools=TOOLS, parallel_tool_calls=True
    )
    made = reply.choices[0].message.tool_calls or []
    assert [(c.id, c.function.parsed_arguments) for c in made] == [
        ("call_w", GetWeather(city="Paris")),
        ("call_t", GetTime(city="Paris")),
    ]
    assert reply.choices[0].finish_reason == "tool_calls"
    (sent,) = upstream.bodies
    assert sent.get("parallel_tool_calls", True) is True  # OpenAI's default may go unsaid


def test_streamed_calls_from_an_upstream(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(
        answer(
            calls=[
                tool_call("call_w", "GetWeather", {"city": "Rio de Janeiro"}),
                tool_call("call_t", "GetTime", {"city": "Rio de Janeiro"}),
            ]
        )
    )
    with _sdk(gw).chat.completions.stream(model="up", messages=BOTH, tools=TOOLS) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [(e.index, e.name, e.parsed_arguments) for e in done] == [
        (0, "GetWeather", GetWeather(city="Rio de Janeiro")),
        (1, "GetTime", GetTime(city="Rio de Janeiro")),
    ]
    message = final.choices[0].message
    assert [c.id for c in message.tool_calls or []] == ["call_w", "call_t"]
    assert final.choices[0].finish_reason == "tool_calls"


def test_streamed_calls_with_n_assemble_per_choice(gw: LiveGateway) -> None:
    gw.fake.enqueue(
        ToolCall("call_a", "GetWeather", json.dumps({"city": "Oslo"})),
        ToolCall("call_b", "GetWeather", json.dumps({"city": "Bergen"})),
    )
    with _sdk(gw).chat.completions.stream(
        model="fake", messages=PARIS, tools=TOOLS, tool_choice="required", n=2
    ) as stream:
        final = stream.get_final_completion()
    found = {
        c.index: [(t.id, t.function.parsed_arguments) for t in c.message.tool_calls or []]
        for c in final.choices
    }
    assert sorted(found.values()) == [
        [("call_a", GetWeather(city="Oslo"))],
        [("call_b", GetWeather(city="Bergen"))],
    ]
    assert sorted(found) == [0, 1]


@pytest.mark.local_model
def test_local_parse_with_strict_tools(local_gw: LiveGateway) -> None:
    reply = _sdk(local_gw, LOCAL_TIMEOUT).chat.completions.parse(
        model="local",
        messages=PARIS,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "GetWeather"}},
        max_tokens=40,
    )
    (made,) = reply.choices[0].message.tool_calls or []
    parsed = made.function.parsed_arguments
    assert isinstance(parsed, GetWeather)
    assert parsed.city.strip().lower() == "paris"


@pytest.mark.local_model
def test_local_parallel_calls_are_one_per_tool(local_gw: LiveGateway) -> None:
    reply = _sdk(local_gw, LOCAL_TIMEOUT).chat.completions.parse(
        model="local", messages=BOTH, tools=TOOLS, tool_choice="required", max_tokens=80
    )
    made = reply.choices[0].message.tool_calls or []
    assert 1 <= len(made) <= 2
    assert len({c.function.name for c in made}) == len(made)
    for call in made:
        assert isinstance(call.function.parsed_arguments, GetWeather | GetTime)
        assert call.function.parsed_arguments.city.strip().lower() == "paris"


@pytest.mark.local_model
def test_local_stream_carries_logprobs(local_gw: LiveGateway) -> None:
    stream = _sdk(local_gw, LOCAL_TIMEOUT).chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=4,
        logprobs=True,
        top_logprobs=2,
        stream=True,
    )
    text, entries = "", []
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.logprobs is not None:
                entries.extend(choice.logprobs.content or [])
    assert text
    assert "".join(e.token for e in entries) == text
    assert all(len(e.top_logprobs) == 2 and e.logprob <= 0 for e in entries)


def test_fields_openai_accepts_and_no_provider_needs_are_accepted(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.append(answer("hi"))
    reply = _sdk(gw).chat.completions.create(
        model="up",
        messages=[{"role": "user", "content": "hi"}],
        user="user-1",
        metadata={"team": "search"},
        store=False,
        service_tier="auto",
        prompt_cache_key="greeting",
        safety_identifier="user-1-hash",
        extra_body={"functions": None, "function_call": None},  # some clients send nulls
    )
    assert reply.choices[0].message.content == "hi"
    assert len(upstream.bodies) == 1
