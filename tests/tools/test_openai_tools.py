"""Tools and sampling fields passed through to an OpenAI-compatible upstream, on the gateway's
aiohttp path and the SDK path alike, and tool calls and logprobs read back by one parser."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.server.conftest import LiveGateway, gateway_settings, live_gateway, upstream_gateway
from tests.tools import weather_tool
from tests.upstream import ScriptedUpstream, answer, tool_call
from tether import ModelSettings
from tether.messages import (
    GenerationParams,
    Message,
    ProviderCall,
    Tool,
    ToolCall,
    ToolSpec,
)
from tether.providers.openai_compat import OpenAICompatProvider

WEATHER = weather_tool(strict=True)
LOGPROBS = {
    "content": [
        {
            "token": "Hi",
            "logprob": -0.25,
            "bytes": [72, 105],
            "top_logprobs": [
                {"token": "Hi", "logprob": -0.25, "bytes": [72, 105]},
                {"token": "Hello", "logprob": -1.5, "bytes": [72, 101, 108, 108, 111]},
            ],
        }
    ],
    "refusal": None,
}


@pytest.fixture
def gw(tmp_path: Path, upstream: ScriptedUpstream) -> Iterator[LiveGateway]:
    with upstream_gateway(tmp_path, upstream) as running:
        yield running


def sdk(live: LiveGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.v1, api_key=live.key, max_retries=0)


def test_tools_pass_through_and_calls_come_back(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.append(answer(calls=[tool_call("call_up1", "get_weather", {"city": "Lima"})]))
    history: list[Any] = [
        {"role": "user", "content": "Weather in Quito, then Lima?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [tool_call("call_a", "get_weather", {"city": "Quito"})],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "12 C"},
    ]
    reply = sdk(gw).chat.completions.create(
        model="up",
        messages=history,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    (made,) = reply.choices[0].message.tool_calls or []
    assert (made.id, made.function.name) == ("call_up1", "get_weather")
    assert json.loads(made.function.arguments) == {"city": "Lima"}
    assert reply.choices[0].finish_reason == "tool_calls"
    (sent,) = upstream.bodies
    assert sent["tools"] == [WEATHER]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["messages"][1] == history[1]
    assert sent["messages"][2] == history[2]


def test_sampling_fields_and_logprobs_pass_through(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.append(answer("Hi", logprobs=LOGPROBS))
    reply = sdk(gw).chat.completions.create(
        model="up",
        messages=[{"role": "user", "content": "greet"}],
        top_p=0.3,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        logit_bias={"100": -100},
        logprobs=True,
        top_logprobs=2,
        seed=9,
    )
    (sent,) = upstream.bodies
    assert (sent["top_p"], sent["presence_penalty"], sent["frequency_penalty"]) == (0.3, 0.5, 0.25)
    assert sent["logit_bias"] == {"100": -100.0}
    assert (sent["logprobs"], sent["top_logprobs"], sent["seed"]) == (True, 2, 9)
    assert "tools" not in sent
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.model_dump() == LOGPROBS


def test_invalid_upstream_call_is_repaired(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.extend(
        [
            answer(calls=[tool_call("call_1", "get_weather", {"town": "Lima"})]),
            answer(calls=[tool_call("call_2", "get_weather", {"city": "Lima"})]),
        ]
    )
    reply = sdk(gw).chat.completions.create(
        model="up",
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    (made,) = reply.choices[0].message.tool_calls or []
    assert made.id == "call_2"
    repair = upstream.bodies[1]["messages"]
    assert "town" in repair[-2]["content"]
    assert repair[-2]["role"] == "assistant"
    assert "tool_calls" not in repair[-2]  # the failed call is shown as text, not replayed


def test_n_is_one_call_billed_once(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append([answer("a"), answer("b")])
    reply = sdk(gw).chat.completions.create(
        model="up", messages=[{"role": "user", "content": "x"}], n=2
    )
    assert [(c.index, c.message.content) for c in reply.choices] == [(0, "a"), (1, "b")]
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 7)
    (sent,) = upstream.bodies
    assert sent["n"] == 2


def test_each_choice_is_repaired_on_its_own(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    good = answer(calls=[tool_call("call_1", "get_weather", {"city": "Lima"})])
    bad = answer(calls=[tool_call("call_2", "get_weather", {"town": "Lima"})])
    fixed = answer(calls=[tool_call("call_3", "get_weather", {"city": "Lima"})])
    upstream.script.extend([[good, bad], fixed])
    reply = sdk(gw).chat.completions.create(
        model="up",
        messages=[{"role": "user", "content": "Weather in Lima?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        n=2,
    )
    ids = [(c.message.tool_calls or [])[0].id for c in reply.choices]
    assert ids == ["call_1", "call_3"]
    first, repair = upstream.bodies
    assert first["n"] == 2
    assert "n" not in repair  # one choice's repair is one completion
    assert "town" in repair["messages"][-2]["content"]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 22  # the call with n, then the repair


def test_a_server_that_ignores_n_is_made_up(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.extend([answer("a"), answer("b")])
    reply = sdk(gw).chat.completions.create(
        model="up", messages=[{"role": "user", "content": "x"}], n=2
    )
    assert sorted(c.message.content or "" for c in reply.choices) == ["a", "b"]
    assert len(upstream.bodies) == 2
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 14


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_sdk_and_aiohttp_paths_read_calls_alike(upstream: ScriptedUpstream, mode: str) -> None:
    import asyncio

    upstream.script.append(
        answer(
            "Checking.",
            calls=[
                tool_call("call_x", "get_weather", {"city": "Oslo"}),
                tool_call("call_y", "get_weather", {"city": "Bergen"}),
            ],
            logprobs=LOGPROBS,
        )
    )
    provider = OpenAICompatProvider("gpt-test", base_url=upstream.base_url, max_retries=0)
    spec = ToolSpec((Tool("get_weather", {"type": "object"}),), "required")
    call = ProviderCall(
        (Message("user", "Oslo and Bergen?"),),
        GenerationParams(logprobs=True, top_logprobs=2),
        tools=spec,
    )
    try:
        completion = (
            provider.complete(call) if mode == "sync" else asyncio.run(provider.acomplete(call))
        )
    finally:
        provider.close()
    assert completion.text == "Checking."
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == (
        ToolCall("call_x", "get_weather", '{"city": "Oslo"}'),
        ToolCall("call_y", "get_weather", '{"city": "Bergen"}'),
    )
    assert completion.logprobs is not None
    assert [(t.token, t.logprob) for t in completion.logprobs[0].top] == [
        ("Hi", -0.25),
        ("Hello", -1.5),
    ]
    assert upstream.bodies[0]["tool_choice"] == "required"


def test_a_server_that_honours_less_says_so_in_its_settings(
    tmp_path: Path, upstream: ScriptedUpstream
) -> None:
    settings = gateway_settings(tmp_path)
    model = ModelSettings(
        provider="openai",
        base_url=upstream.base_url,
        max_retries=0,
        capabilities={"sampling_params": ["stop", "seed"], "supports_n": False},  # type: ignore[arg-type]
    )
    models = {**settings.models, "small": model}
    upstream.script.extend([answer("a"), answer("b")])
    with live_gateway(settings.model_copy(update={"models": models})) as running:
        client = sdk(running)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="small", messages=[{"role": "user", "content": "x"}], logprobs=True
            )
        assert caught.value.body["param"] == "logprobs"  # type: ignore[index]
        reply = client.chat.completions.create(
            model="small", messages=[{"role": "user", "content": "x"}], n=2, seed=3
        )
    assert len(reply.choices) == 2
    assert [body.get("n") for body in upstream.bodies] == [None, None]  # one call per choice
