"""LangChain's tool calling against the gateway (its OpenAI client, a scripted fake model):
`with_structured_output(method="function_calling")` gets its object, `bind_tools` its calls,
and an agent turn with a tool result goes through."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from tether.messages import ToolCall

from .conftest import LiveGateway


class Weather(BaseModel):
    """Current weather for a city."""

    city: str
    celsius: float


def _chat(live: LiveGateway) -> ChatOpenAI:
    return ChatOpenAI(
        model="fake", base_url=live.v1, api_key=SecretStr(live.key), max_retries=0, timeout=30
    )


def test_structured_output_by_function_calling(live: LiveGateway) -> None:
    live.fake.enqueue(ToolCall("call_1", "Weather", json.dumps({"city": "Oslo", "celsius": 3})))
    found = _chat(live).with_structured_output(Weather, method="function_calling").invoke("Oslo?")
    assert found == Weather(city="Oslo", celsius=3)
    tools = live.fake.calls[-1].tools
    assert tools is not None
    assert tools.function == "Weather"


def test_bind_tools_returns_calls_and_takes_results(live: LiveGateway) -> None:
    live.fake.enqueue(ToolCall("call_7", "Weather", json.dumps({"city": "Lima", "celsius": 19})))
    model = _chat(live).bind_tools([Weather])
    asked = HumanMessage("Lima?")
    reply = model.invoke([asked])
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls == [
        {"name": "Weather", "args": {"city": "Lima", "celsius": 19}, "id": "call_7",
         "type": "tool_call"}
    ]  # fmt: skip
    live.fake.enqueue("It is 19 C in Lima.")
    answer = model.invoke([asked, reply, ToolMessage("19 C", tool_call_id="call_7")])
    assert answer.content == "It is 19 C in Lima."
    sent = live.fake.calls[-1].messages
    assert sent[1].tool_calls[0].id == "call_7"
    assert (sent[2].role, sent[2].tool_call_id) == ("tool", "call_7")
