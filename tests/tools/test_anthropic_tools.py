"""OpenAI-shaped tool use mapped onto Anthropic's Messages API and back, against constructed
Messages API answers (no network): tools, tool_choice, parallel calls, tool results, stop
reasons, and what Anthropic cannot honour refused by name."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tether import Client, ModelSettings, Settings
from tether.errors import ContractViolation, InvalidRequest
from tether.messages import Message, Tool, ToolCall, ToolSpec
from tether.providers.anthropic import AnthropicProvider

WEATHER = Tool(
    "get_weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "Current weather for a city",
)
TIME = Tool("get_time", {"type": "object", "properties": {"zone": {"type": "string"}}})
USAGE = {"input_tokens": 30, "output_tokens": 12}


def _message(content: list[dict[str, Any]], stop_reason: str) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": USAGE,
    }


def _use(block_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": block_id, "name": name, "input": arguments}


class Recorder:
    def __init__(self, *answers: dict[str, Any]) -> None:
        self.answers = list(answers)
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        return httpx2.Response(200, json=self.answers.pop(0))


def _client(recorder: Recorder) -> Client:
    settings = Settings(
        default_model="claude",
        models={"claude": ModelSettings(provider="anthropic", upstream_model="claude-haiku-4-5")},
    )
    provider = AnthropicProvider(
        "claude-haiku-4-5",
        api_key="test-key",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(recorder)),
    )
    return Client(settings, providers={"claude": provider})


def test_tools_and_choices_map_to_anthropic() -> None:
    cases = [
        (ToolSpec((WEATHER, TIME)), {"type": "auto"}),
        (ToolSpec((WEATHER, TIME), "required"), {"type": "any"}),
        (ToolSpec((WEATHER, TIME), "required", "get_time"), {"type": "tool", "name": "get_time"}),
        (ToolSpec((WEATHER, TIME), "none"), {"type": "none"}),
        (
            ToolSpec((WEATHER, TIME), "auto", parallel=False),
            {"type": "auto", "disable_parallel_tool_use": True},
        ),
        (
            ToolSpec((WEATHER, TIME), "required", parallel=False),
            {"type": "any", "disable_parallel_tool_use": True},
        ),
    ]
    for spec, expected in cases:
        if spec.required:
            answer = _message([_use("toolu_1", "get_time", {})], "tool_use")
        else:
            answer = _message([{"type": "text", "text": "ok"}], "end_turn")
        recorder = Recorder(answer)
        with _client(recorder) as client:
            client.generate("Weather?", tools=spec)
        (body,) = recorder.bodies
        assert body["tool_choice"] == expected, spec
        assert body["tools"][0] == {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": dict(WEATHER.parameters),
        }
        assert body["tools"][1] == {"name": "get_time", "input_schema": dict(TIME.parameters)}


def test_tool_use_blocks_come_back_as_calls() -> None:
    answer = _message(
        [
            {"type": "text", "text": "Let me check both."},
            _use("toolu_01A", "get_weather", {"city": "Oslo"}),
            _use("toolu_01B", "get_time", {"zone": "CET"}),
        ],
        "tool_use",
    )
    with _client(Recorder(answer)) as client:
        result = client.generate("Oslo?", tools=ToolSpec((WEATHER, TIME), "required"))
    assert result.tool_calls == (
        ToolCall("toolu_01A", "get_weather", '{"city": "Oslo"}'),
        ToolCall("toolu_01B", "get_time", '{"zone": "CET"}'),
    )
    assert result.raw == "Let me check both."
    assert result.attempts[-1].finish_reason == "tool_calls"
    assert result.output == [
        {"id": "toolu_01A", "name": "get_weather", "arguments": {"city": "Oslo"}},
        {"id": "toolu_01B", "name": "get_time", "arguments": {"zone": "CET"}},
    ]


def test_history_maps_to_tool_use_and_tool_result_blocks() -> None:
    recorder = Recorder(_message([{"type": "text", "text": "Oslo 3 C, 14:00."}], "end_turn"))
    history = [
        Message("system", "Be brief."),
        Message("user", "Oslo weather and time?"),
        Message(
            "assistant",
            "",
            (
                ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),
                ToolCall("call_2", "get_time", '{"zone":"CET"}'),
            ),
        ),
        Message("tool", "3 C", tool_call_id="call_1"),
        Message("tool", "14:00", tool_call_id="call_2"),
        Message("user", "Thanks, summarise."),
    ]
    with _client(recorder) as client:
        result = client.generate(history, tools=ToolSpec((WEATHER, TIME)))
    assert result.raw == "Oslo 3 C, 14:00."
    assert result.attempts[-1].finish_reason == "stop"
    body = recorder.bodies[0]
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {"role": "user", "content": "Oslo weather and time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "get_weather",
                 "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {"zone": "CET"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "3 C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "14:00"},
                {"type": "text", "text": "Thanks, summarise."},
            ],
        },
    ]  # fmt: skip


def test_invalid_tool_input_is_repaired_then_refused() -> None:
    bad = _message([_use("toolu_1", "get_weather", {"town": "Oslo"})], "tool_use")
    recorder = Recorder(bad, bad, bad)
    with _client(recorder) as client, pytest.raises(ContractViolation) as caught:
        client.generate("Oslo?", tools=ToolSpec((WEATHER,), "required"), max_repairs=2)
    assert len(caught.value.attempts) == 3
    assert caught.value.contract == "tool_calls"
    # The repair turn shows the failed call as text: no dangling tool_use without a result.
    last = recorder.bodies[-1]["messages"]
    assert last[-2]["role"] == "assistant"
    assert "town" in last[-2]["content"]


def test_a_contract_and_tools_together_use_any() -> None:
    answer = _message([_use("toolu_9", "reply", {"answer": "yes"})], "tool_use")
    recorder = Recorder(answer)
    contract = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "title": "reply",
    }
    with _client(recorder) as client:
        result = client.generate("Ok?", contract=contract, tools=ToolSpec((WEATHER,)))
    assert result.output == {"answer": "yes"}
    assert result.tool_calls == ()
    body = recorder.bodies[0]
    assert body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in body["tools"]] == ["get_weather", "reply"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 3}, "logprobs"),
        ({"top_p": 0.5}, "top_p"),
        ({"seed": 1}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": ((1, 2.0),)}, "logit_bias"),
    ],
)
def test_what_anthropic_cannot_honour_is_refused_by_name(
    params: dict[str, Any], field: str
) -> None:
    recorder = Recorder()
    with _client(recorder) as client, pytest.raises(InvalidRequest) as caught:
        client.generate("hi", **params)
    assert caught.value.param == field
    assert recorder.bodies == []


def test_stop_sequences_are_honoured() -> None:
    recorder = Recorder(_message([{"type": "text", "text": "a"}], "stop_sequence"))
    with _client(recorder) as client:
        client.generate("hi", stop=("END",))
    assert recorder.bodies[0]["stop_sequences"] == ["END"]


def test_arguments_that_are_not_an_object_are_refused() -> None:
    history = [
        Message("user", "x"),
        Message("assistant", "", (ToolCall("call_1", "get_weather", "[1]"),)),
        Message("tool", "r", tool_call_id="call_1"),
    ]
    with _client(Recorder()) as client, pytest.raises(InvalidRequest) as caught:
        client.generate(history, tools=ToolSpec((WEATHER,)))
    assert caught.value.param == "messages"


def test_provider_maps_stop_reason_max_tokens() -> None:
    recorder = Recorder(_message([{"type": "text", "text": "cut"}], "max_tokens"))
    with _client(recorder) as client:
        result = client.generate("hi")
    assert result.attempts[-1].finish_reason == "length"
