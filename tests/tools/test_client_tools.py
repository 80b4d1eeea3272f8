"""Tools through the Python API: a contract per tool, checked against the provider before any
call, and fields a provider cannot honour refused by name before any call."""

from __future__ import annotations

import json

import pytest

from tether import Client, FakeProvider, ModelSettings, Settings
from tether.errors import InvalidRequest, SchemaProblem
from tether.messages import Tool, ToolCall, ToolSpec
from tether.providers.base import Capabilities

WEATHER = Tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}})


def _client(fake: FakeProvider) -> Client:
    settings = Settings(default_model="fake", models={"fake": ModelSettings(provider="fake")})
    return Client(settings, providers={"fake": fake})


def test_a_tool_schema_the_provider_cannot_enforce_is_refused_before_calling() -> None:
    fake = FakeProvider(problems=[SchemaProblem("pattern", "/city", "lookaround")])
    with _client(fake) as client, pytest.raises(InvalidRequest) as caught:
        client.generate("hi", tools=ToolSpec((WEATHER,)))
    assert caught.value.param == "tools[0].function.parameters"
    assert "lookaround" in caught.value.message
    assert fake.calls == []


def test_tools_on_a_provider_without_them_are_refused() -> None:
    fake = FakeProvider(capabilities=Capabilities())
    with _client(fake) as client, pytest.raises(InvalidRequest) as caught:
        client.generate("hi", tools=ToolSpec((WEATHER,)))
    assert caught.value.param == "tools"
    assert fake.calls == []


def test_generate_returns_validated_calls() -> None:
    fake = FakeProvider([ToolCall("call_1", "get_weather", json.dumps({"city": "Oslo"}))])
    with _client(fake) as client:
        result = client.generate("Oslo?", tools=ToolSpec((WEATHER,), "required"))
    assert result.output == [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Oslo"}}]
    assert result.tool_calls == (ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),)
