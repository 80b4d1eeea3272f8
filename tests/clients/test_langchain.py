"""LangChain's OpenAI chat model against the gateway: `invoke`, `stream`, `with_structured_output`
by each method (function_calling, json_schema, json_mode) and `bind_tools` with a tool result
turn, on a scripted OpenAI-compatible upstream (what reached it is checked), the `fake` model
(streams) and the local model. OpenAIEmbeddings on `local-embed` is in
tests/server/test_embeddings.py."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from tests.server.conftest import LiveGateway
from tests.upstream import ScriptedUpstream, answer, tool_call
from tether.messages import ToolCall

from .conftest import LOCAL_TIMEOUT, TIMEOUT


class Weather(BaseModel):
    """Current weather for a city."""

    city: str
    celsius: float


class City(BaseModel):
    """The city a question is about."""

    city: str


Method = Literal["function_calling", "json_schema", "json_mode"]
PARIS = "What's the weather like in Paris today?"


def _chat(live: LiveGateway, model: str, **extra: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=model,
        base_url=live.v1,
        api_key=SecretStr(live.key),
        max_retries=0,
        timeout=LOCAL_TIMEOUT if model == "local" else TIMEOUT,
        **extra,
    )


def test_invoke(gw: LiveGateway, upstream: ScriptedUpstream) -> None:
    upstream.script.append(answer("Bonjour."))
    reply = _chat(gw, "up", temperature=0.2, max_tokens=20).invoke("Say hello in French.")
    assert isinstance(reply, AIMessage)
    assert reply.content == "Bonjour."
    assert reply.usage_metadata is not None
    assert (reply.usage_metadata["input_tokens"], reply.usage_metadata["output_tokens"]) == (11, 7)
    (sent,) = upstream.bodies
    assert sent["messages"] == [{"role": "user", "content": "Say hello in French."}]
    assert (sent["temperature"], sent["max_tokens"]) == (0.2, 20)


def test_stream(gw: LiveGateway) -> None:
    gw.fake.enqueue("one two three four")
    # LangChain asks for usage in a stream only from api.openai.com unless told to.
    chunks = list(_chat(gw, "fake", stream_usage=True).stream("Count to four."))
    assert len(chunks) > 1
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    assert whole.content == "one two three four"
    assert whole.usage_metadata is not None
    assert whole.usage_metadata["output_tokens"] == 4


async def test_async_invoke_and_stream(gw: LiveGateway) -> None:
    gw.fake.enqueue("first answer", "second answer here")
    chat = _chat(gw, "fake")
    reply = await chat.ainvoke("One?")
    assert reply.content == "first answer"
    pieces = [str(chunk.content) async for chunk in chat.astream("Two?")]
    assert "".join(pieces) == "second answer here"
    assert len([p for p in pieces if p]) > 1


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_structured_output_by_each_method(
    gw: LiveGateway, upstream: ScriptedUpstream, method: Method
) -> None:
    oslo = {"city": "Oslo", "celsius": 3}
    if method == "function_calling":
        upstream.script.append(answer(calls=[tool_call("call_1", "Weather", oslo)]))
    else:
        upstream.script.append(answer(json.dumps(oslo)))
    model = _chat(gw, "up").with_structured_output(Weather, method=method)
    found = model.invoke("Weather in Oslo, as JSON with city and celsius?")
    assert found == Weather(city="Oslo", celsius=3)
    (sent,) = upstream.bodies
    if method == "function_calling":
        assert [t["function"]["name"] for t in sent["tools"]] == ["Weather"]
        assert sent["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    elif method == "json_schema":
        spec = sent["response_format"]
        assert spec["type"] == "json_schema"
        assert spec["json_schema"]["name"] == "Weather"
        assert set(spec["json_schema"]["schema"]["properties"]) == {"city", "celsius"}
    else:
        assert sent["response_format"] == {"type": "json_object"}


def test_structured_output_is_repaired_by_the_gateway(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.extend(
        [answer(json.dumps({"city": "Oslo"})), answer(json.dumps({"city": "Oslo", "celsius": 2}))]
    )
    found = _chat(gw, "up").with_structured_output(Weather, method="json_schema").invoke("Oslo?")
    assert found == Weather(city="Oslo", celsius=2)
    assert "celsius" in upstream.bodies[1]["messages"][-1]["content"]  # the validator's error


def test_bind_tools_returns_calls_and_takes_results(
    gw: LiveGateway, upstream: ScriptedUpstream
) -> None:
    upstream.script.append(
        answer(calls=[tool_call("call_7", "Weather", {"city": "Lima", "celsius": 19})])
    )
    model = _chat(gw, "up").bind_tools([Weather])
    asked = HumanMessage("Lima?")
    reply = model.invoke([asked])
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == [
        {"name": "Weather", "args": {"city": "Lima", "celsius": 19}, "id": "call_7",
         "type": "tool_call"}
    ]  # fmt: skip
    upstream.script.append(answer("It is 19 C in Lima."))
    final = model.invoke([asked, reply, ToolMessage("19 C", tool_call_id="call_7")])
    assert final.content == "It is 19 C in Lima."
    _, sent = upstream.bodies
    assert sent["messages"][1]["tool_calls"][0]["id"] == "call_7"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_7", "content": "19 C"}


def test_bind_tools_on_the_fake_model(gw: LiveGateway) -> None:
    gw.fake.enqueue(ToolCall("call_7", "Weather", json.dumps({"city": "Lima", "celsius": 19})))
    model = _chat(gw, "fake").bind_tools([Weather], tool_choice="Weather")
    asked = HumanMessage("Lima?")
    reply = model.invoke([asked])
    assert isinstance(reply, AIMessage)
    assert [(c["name"], c["args"], c["id"]) for c in reply.tool_calls] == [
        ("Weather", {"city": "Lima", "celsius": 19}, "call_7")
    ]
    tools = gw.fake.calls[-1].tools
    assert tools is not None
    assert tools.function == "Weather"
    gw.fake.enqueue("It is 19 C in Lima.")
    final = (
        _chat(gw, "fake")
        .bind_tools([Weather])
        .invoke([asked, reply, ToolMessage("19 C", tool_call_id="call_7")])
    )
    assert final.content == "It is 19 C in Lima."
    sent = gw.fake.calls[-1].messages
    assert sent[1].tool_calls[0].id == "call_7"
    assert (sent[2].role, sent[2].tool_call_id, sent[2].content) == ("tool", "call_7", "19 C")


@pytest.mark.local_model
def test_local_invoke_and_stream(local_gw: LiveGateway) -> None:
    chat = _chat(local_gw, "local", max_tokens=8)
    reply = chat.invoke("Say hello.")
    assert isinstance(reply, AIMessage)
    assert isinstance(reply.content, str)
    assert reply.content
    chunks = list(chat.stream("Say hello."))
    streamed = "".join(str(c.content) for c in chunks)
    assert streamed == reply.content  # the same greedy answer, whole or streamed


@pytest.mark.local_model
@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_local_structured_output(local_gw: LiveGateway, method: Method) -> None:
    model = _chat(local_gw, "local", max_tokens=40).with_structured_output(City, method=method)
    found = model.invoke(PARIS)
    assert isinstance(found, City)
    assert found.city.strip().lower() == "paris"


@pytest.mark.local_model
def test_local_bind_tools_round_trip(local_gw: LiveGateway) -> None:
    chat = _chat(local_gw, "local", max_tokens=60)
    asked = HumanMessage(PARIS)
    reply = chat.bind_tools([City], tool_choice="required").invoke([asked])
    assert isinstance(reply, AIMessage)
    (made,) = reply.tool_calls
    assert made["name"] == "City"
    assert made["id"]
    assert City.model_validate(made["args"]).city.strip().lower() == "paris"
    final = chat.bind_tools([City], tool_choice="none").invoke(
        [
            asked,
            reply,
            ToolMessage('{"temperature_c": 21, "sky": "clear"}', tool_call_id=made["id"]),
        ]
    )
    assert isinstance(final.content, str)
    assert final.content
    assert not final.tool_calls
