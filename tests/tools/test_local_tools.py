"""Tool calling and the sampling fields on the real local model (Qwen2.5-Coder-0.5B-Instruct,
whose chat template renders tools), through the gateway with the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest

from tests.server.conftest import LiveGateway, gateway_settings, live_gateway
from tests.tools import weather_tool
from tether.providers.llamacpp import LlamaCppProvider

pytestmark = pytest.mark.local_model

PARAMETERS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
}
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": PARAMETERS,
    },
}
ASK: Any = [{"role": "user", "content": "What's the weather in Paris, in celsius?"}]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    with live_gateway(gateway_settings(tmp_path_factory.mktemp("local-tools"))) as running:
        yield running


@pytest.fixture(scope="module")
def sdk(gw: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=gw.key, max_retries=0, timeout=600)


def test_required_call_meets_the_parameters(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(
        model="local", messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=60
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (made,) = choice.message.tool_calls or []
    assert made.id.startswith("call_")
    assert made.function.name == "get_weather"
    jsonschema.validate(json.loads(made.function.arguments), PARAMETERS)


def test_auto_answers_with_a_valid_call_or_text(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(model="local", messages=ASK, tools=[WEATHER], max_tokens=60)
    choice = reply.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        for made in choice.message.tool_calls:
            jsonschema.validate(json.loads(made.function.arguments), PARAMETERS)
    else:
        assert choice.finish_reason in {"stop", "length"}
        assert choice.message.content
        assert not choice.message.content.startswith("<tool_call>")


CITY_ONLY = weather_tool()


def test_auto_calls_the_tool_a_question_needs(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "What's the weather like in Paris today?"}],
        tools=[CITY_ONLY],
        tool_choice="auto",
        max_tokens=60,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (made,) = choice.message.tool_calls or []
    assert made.function.name == "get_weather"
    assert json.loads(made.function.arguments) == {"city": "Paris"}


def test_auto_answers_in_text_when_no_tool_is_needed(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Say hello."}],
        tools=[CITY_ONLY],
        tool_choice="auto",
        max_tokens=30,
    )
    choice = reply.choices[0]
    assert choice.message.tool_calls is None
    assert choice.finish_reason in {"stop", "length"}
    assert "hello" in (choice.message.content or "").lower()


def test_streamed_named_call_assembles(sdk: openai.OpenAI) -> None:
    with sdk.chat.completions.stream(
        model="local",
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
    ) as stream:
        final = stream.get_final_completion()
    (made,) = final.choices[0].message.tool_calls or []
    assert made.function.name == "get_weather"
    jsonschema.validate(json.loads(made.function.arguments), PARAMETERS)


def test_tool_result_round_trip(sdk: openai.OpenAI) -> None:
    history = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"city": "Paris", "unit": "celsius"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temperature": 21}'},
    ]
    reply = sdk.chat.completions.create(
        model="local", messages=history, tools=[WEATHER], tool_choice="none", max_tokens=30
    )
    assert reply.choices[0].message.content
    assert reply.choices[0].message.tool_calls is None


def test_logprobs_logit_bias_and_n(sdk: openai.OpenAI, gw: LiveGateway) -> None:
    hello: Any = [{"role": "user", "content": "Say hello."}]
    reply = sdk.chat.completions.create(
        model="local", messages=hello, max_tokens=4, logprobs=True, top_logprobs=3, n=2
    )
    assert len(reply.choices) == 2
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    entries = logprobs.content or []
    assert "".join(e.token for e in entries).strip() == reply.choices[0].message.content
    for entry in entries:
        assert len(entry.top_logprobs) == 3
        ranked = [t.logprob for t in entry.top_logprobs]
        assert ranked == sorted(ranked, reverse=True)
        assert entry.token == entry.top_logprobs[0].token  # temperature 0 takes the best
        assert entry.logprob <= 0
    # Banning the first token makes the model start differently.
    provider = gw.gateway.client.provider("local")
    assert isinstance(provider, LlamaCppProvider)
    first = bytes(entries[0].bytes or [])
    (token,) = provider.tokenize(first)
    banned = sdk.chat.completions.create(
        model="local", messages=hello, max_tokens=4, logprobs=True, logit_bias={str(token): -100}
    )
    again = (banned.choices[0].logprobs.content or []) if banned.choices[0].logprobs else []
    assert again
    assert again[0].token != entries[0].token


def test_json_object_is_a_meaningful_object(sdk: openai.OpenAI) -> None:
    reply = sdk.chat.completions.create(
        model="local",
        messages=[{"role": "user", "content": "Name the capital of France and its country."}],
        response_format={"type": "json_object"},
        max_tokens=200,
    )
    value = json.loads(reply.choices[0].message.content or "")
    assert isinstance(value, dict)
    assert value
