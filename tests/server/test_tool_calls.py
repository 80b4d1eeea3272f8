"""Tool calling through the gateway with the official openai SDK, on a scripted fake model:
calls validated against their tools' parameters and repaired, streamed as OpenAI's deltas,
results sent back, `n` choices, and 400s that name the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from sqlalchemy import select

from tests.tools import weather_tool
from tether import FakeProvider, ModelSettings
from tether.messages import ToolCall
from tether.providers.base import Capabilities
from tether.store.tables import requests

from .conftest import LiveGateway, gateway_settings, live_gateway

WEATHER = weather_tool(unit=True)
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        },
    },
}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[LiveGateway]:
    settings = gateway_settings(tmp_path)
    models = {**settings.models, "plain": ModelSettings(provider="fake")}
    plain = FakeProvider(respond=lambda call: "ok", capabilities=Capabilities(can_stream=True))
    with live_gateway(settings.model_copy(update={"models": models}), {"plain": plain}) as running:
        yield running


def sdk(live: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)


def call(name: str, arguments: dict[str, Any] | str, call_id: str = "call_1") -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(call_id, name, text)


def test_required_call_comes_back_as_tool_calls(gw: LiveGateway) -> None:
    gw.fake.enqueue(call("get_weather", {"city": "Paris"}))
    reply = sdk(gw).chat.completions.create(
        model="fake", messages=ASK, tools=[WEATHER, TIME], tool_choice="required"
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (made,) = choice.message.tool_calls
    assert made.type == "function"
    assert made.id == "call_1"
    assert (made.function.name, json.loads(made.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    sent = gw.fake.calls[-1].tools
    assert sent is not None
    assert sent.required
    assert [t.name for t in sent.tools] == [
        "get_weather",
        "get_time",
    ]


def test_invalid_arguments_are_repaired(gw: LiveGateway) -> None:
    gw.fake.enqueue(
        call("get_weather", {"city": "Paris", "unit": "kelvin"}),
        call("get_weather", {"city": "Paris", "unit": "c"}, "call_2"),
    )
    reply = sdk(gw).chat.completions.create(model="fake", messages=ASK, tools=[WEATHER])
    (made,) = reply.choices[0].message.tool_calls or []
    assert json.loads(made.function.arguments) == {"city": "Paris", "unit": "c"}
    repair = gw.fake.calls[-1].messages
    assert "kelvin" in repair[-2].content  # the failed call is shown to the model
    assert "tool call 0 (get_weather) arguments" in repair[-1].content
    assert reply.model_extra is not None
    assert reply.model_extra["tether"]["attempts"] == 2


def test_a_call_that_never_validates_is_422_with_its_attempts(gw: LiveGateway) -> None:
    gw.fake.enqueue(*(call("get_weather", {"town": "Paris"}) for _ in range(3)))
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        sdk(gw).chat.completions.create(model="fake", messages=ASK, tools=[WEATHER])
    assert "tool_calls" in str(caught.value)
    assert len(gw.fake.calls) == 3


def test_unknown_tool_and_missing_required_call_are_repaired(gw: LiveGateway) -> None:
    gw.fake.enqueue(
        "It is sunny.", call("get_time", {"zone": "CET"}), call("get_weather", {"city": "Oslo"})
    )
    reply = sdk(gw).chat.completions.create(
        model="fake",
        messages=ASK,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    (made,) = reply.choices[0].message.tool_calls or []
    assert made.function.name == "get_weather"
    first, second = gw.fake.calls[1].messages[-1].content, gw.fake.calls[2].messages[-1].content
    assert "a tool call is required" in first
    assert "names 'get_time'; allowed: get_weather" in second


def test_auto_answer_in_text_is_plain_content(gw: LiveGateway) -> None:
    gw.fake.enqueue("No tool needed.")
    reply = sdk(gw).chat.completions.create(model="fake", messages=ASK, tools=[WEATHER])
    assert reply.choices[0].message.content == "No tool needed."
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].finish_reason == "stop"


def test_parallel_calls_and_their_limit(gw: LiveGateway) -> None:
    two = (call("get_weather", {"city": "Paris"}), call("get_time", {"zone": "CET"}, "call_2"))
    gw.fake.enqueue(two)
    reply = sdk(gw).chat.completions.create(model="fake", messages=ASK, tools=[WEATHER, TIME])
    assert [c.function.name for c in reply.choices[0].message.tool_calls or []] == [
        "get_weather",
        "get_time",
    ]
    gw.fake.enqueue(two, call("get_weather", {"city": "Paris"}))
    reply = sdk(gw).chat.completions.create(
        model="fake", messages=ASK, tools=[WEATHER, TIME], parallel_tool_calls=False
    )
    assert len(reply.choices[0].message.tool_calls or []) == 1
    assert "2 tool calls were made; make exactly one" in gw.fake.calls[-1].messages[-1].content
    sent = gw.fake.calls[-1].tools
    assert sent is not None
    assert sent.parallel is False


def test_streamed_tool_calls_assemble_in_the_sdk_helper(gw: LiveGateway) -> None:
    arguments = {"city": "Rio de Janeiro, the marvellous city", "unit": "c"}
    gw.fake.enqueue((call("get_weather", arguments), call("get_time", {"zone": "BRT"}, "call_2")))
    with sdk(gw).chat.completions.stream(
        model="fake", messages=ASK, tools=[WEATHER, TIME]
    ) as stream:
        chunks = [event.chunk for event in stream if event.type == "chunk"]
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name) for c in message.tool_calls or []] == [
        ("call_1", "get_weather"),
        ("call_2", "get_time"),
    ]
    assert json.loads((message.tool_calls or [])[0].function.arguments) == arguments
    # OpenAI's shape: a head delta with index, id, type and name, then argument fragments.
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    head = deltas[0]
    assert (head.index, head.id, head.type) == (0, "call_1", "function")
    assert head.function is not None
    assert head.function.arguments == ""
    fragments = [d for d in deltas if d.index == 0 and d.id is None]
    assert len(fragments) > 1
    assert all(d.function is not None and d.function.name is None for d in fragments)


def test_streamed_tool_calls_raw_chunks(gw: LiveGateway) -> None:
    gw.fake.enqueue(call("get_weather", {"city": "Paris"}))
    with httpx2.stream(
        "POST",
        f"{gw.v1}/chat/completions",
        json={"model": "fake", "messages": ASK, "tools": [WEATHER], "stream": True},
        headers={"authorization": f"Bearer {gw.key}"},
        timeout=30,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert chunks[1]["choices"][0]["delta"] == {
        "tool_calls": [
            {
                "index": 0,
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


def test_tool_results_round_trip(gw: LiveGateway) -> None:
    gw.fake.enqueue("It is 21 C in Paris.")
    history = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": '{"temp_c": 21}'},
    ]
    reply = sdk(gw).chat.completions.create(model="fake", messages=history, tools=[WEATHER])  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "It is 21 C in Paris."
    sent = gw.fake.calls[-1].messages
    assert sent[1].tool_calls == (ToolCall("call_9", "get_weather", '{"city":"Paris"}'),)
    assert (sent[2].role, sent[2].tool_call_id, sent[2].content) == (
        "tool",
        "call_9",
        '{"temp_c": 21}',
    )
    assert gw.gateway.log.flush()
    with gw.gateway.engine.connect() as conn:
        (row,) = conn.execute(select(requests)).all()
    logged = json.loads(row.messages)  # the request log keeps the calls and results
    assert logged[1]["tool_calls"] == history[1]["tool_calls"]
    assert logged[1]["content"] == ""
    assert logged[2] == {"role": "tool", "content": '{"temp_c": 21}', "tool_call_id": "call_9"}


def test_n_choices_sum_their_usage(gw: LiveGateway) -> None:
    gw.fake.enqueue("one two", "three four five")
    reply = sdk(gw).chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "hi"}], n=2
    )
    assert sorted(c.message.content or "" for c in reply.choices) == ["one two", "three four five"]
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (2, 5)
    assert gw.gateway.log.flush()
    with gw.gateway.engine.connect() as conn:
        (row,) = conn.execute(select(requests)).all()
    assert (row.input_tokens, row.output_tokens) == (2, 5)


def test_n_choices_stream_by_index(gw: LiveGateway) -> None:
    gw.fake.enqueue("alpha", "beta")
    stream = sdk(gw).chat.completions.create(
        model="fake", messages=[{"role": "user", "content": "hi"}], n=2, stream=True
    )
    texts: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert sorted(texts.values()) == ["alpha", "beta"]


def test_sampling_params_reach_the_provider(gw: LiveGateway) -> None:
    gw.fake.enqueue("ok")
    sdk(gw).chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": "hi"}],
        top_p=0.5,
        presence_penalty=0.25,
        frequency_penalty=-0.5,
        logit_bias={"42": -100, "7": 3},
        seed=5,
        stop=["END"],
    )
    params = gw.fake.calls[-1].params
    assert (params.top_p, params.presence_penalty, params.frequency_penalty) == (0.5, 0.25, -0.5)
    assert params.logit_bias == ((42, -100.0), (7, 3.0))
    assert (params.seed, params.stop) == (5, ("END",))


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"top_p": 0.9}, "top_p"),
        ({"presence_penalty": 1}, "presence_penalty"),
        ({"frequency_penalty": 1}, "frequency_penalty"),
        ({"logit_bias": {"1": 5}}, "logit_bias"),
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
        ({"tools": [WEATHER]}, "tools"),
    ],
)
def test_what_a_provider_cannot_honour_is_400_naming_it(
    gw: LiveGateway, body: dict[str, Any], param: str
) -> None:
    response = _post(gw, {"model": "plain", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tools": {}}, "tools"),
        ({"tools": [{"type": "function"}]}, "tools[0].function"),
        ({"tools": [{"type": "function", "function": {"name": "a b"}}]}, "tools[0].function.name"),
        ({"tools": [WEATHER, WEATHER]}, "tools[1].function.name"),
        ({"tools": [{**WEATHER, "type": "code"}]}, "tools[0].type"),
        ({"tools": [WEATHER], "tool_choice": "any"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice.function.name",
        ),
        ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"functions": [WEATHER["function"]]}, "functions"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}]},
            "messages[0].tool_calls[0].function",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function",
                             "function": {"name": "f", "arguments": {}}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"n": 0}, "n"),
        ({"n": 1000}, "n"),
        ({"top_p": 1.5}, "top_p"),
        ({"presence_penalty": 3}, "presence_penalty"),
        ({"logit_bias": {"x": 1}}, "logit_bias"),
        ({"logit_bias": {"1": 101}}, "logit_bias"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ],
)  # fmt: skip
def test_bad_tool_and_sampling_fields_are_400_naming_the_field(
    gw: LiveGateway, body: dict[str, Any], param: str
) -> None:
    response = _post(gw, {"model": "fake", **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def _post(gw: LiveGateway, body: dict[str, Any]) -> httpx2.Response:
    return httpx2.post(
        f"{gw.v1}/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], **body},
        headers={"authorization": f"Bearer {gw.key}"},
        timeout=30,
    )
