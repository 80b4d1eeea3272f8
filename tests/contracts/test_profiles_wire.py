"""The request fields a contract becomes, and the answer turned back into the contract's shape
(unwrapped root, a null meaning "absent" dropped) before the contract validates it."""

from __future__ import annotations

import json
from typing import Any

import httpx2
from anthropic.lib._parse._transform import transform_schema
from pydantic import BaseModel

from tether import Capabilities, Client, Contract, OutputSpec, ProviderCall, Settings
from tether.messages import Message
from tether.providers.anthropic import AnthropicProvider
from tether.providers.openai_compat import OpenAICompatProvider
from tether.providers.schema_profiles import restore, wire_plan

from .profile_cases import Contact, Node, Sentiment, Tags, WithDefault

OPENAI = Capabilities(supports_json_schema=True, engine="openai")


def _spec(contract: type[BaseModel] | dict[str, Any]) -> OutputSpec:
    found = (
        Contract.from_model(contract)
        if isinstance(contract, type)
        else Contract.from_schema(contract)
    )
    schema, strict = found.enforcement_schema()
    return OutputSpec(found.name, schema, strict)


def _call(spec: OutputSpec) -> ProviderCall:
    return ProviderCall((Message("user", "hi"),), output=spec)


def _restored(contract: type[BaseModel] | dict[str, Any], answer: Any) -> Any:
    spec = _spec(contract)
    plan = wire_plan(spec.schema, spec.strict, OPENAI)
    return json.loads(restore(json.dumps(answer), plan, spec.schema))


def test_a_bare_object_goes_to_openai_as_json_mode_with_the_word_json() -> None:
    args = OpenAICompatProvider("gpt", api_key="k")._arguments(_call(_spec({"type": "object"})))
    assert args["response_format"] == {"type": "json_object"}
    assert args["messages"][0]["role"] == "system"
    assert "JSON" in args["messages"][0]["content"]


def test_a_bare_object_goes_to_anthropic_as_a_plain_tool() -> None:
    args = AnthropicProvider("claude", api_key="k")._arguments(_call(_spec({"type": "object"})))
    (tool,) = args["tools"]
    assert tool["input_schema"] == {"type": "object"}
    assert tool["strict"] is False


def test_anthropic_gets_its_sdk_schema_as_a_strict_tool() -> None:
    args = AnthropicProvider("claude", api_key="k")._arguments(_call(_spec(Sentiment)))
    (tool,) = args["tools"]
    assert tool["strict"] is True
    assert tool["input_schema"] == transform_schema(Sentiment)
    confidence = tool["input_schema"]["properties"]["confidence"]
    assert "minimum" not in confidence  # documented unsupported: in the description instead
    assert confidence["description"].endswith("{maximum: 1, minimum: 0}")


def test_a_null_for_an_optional_field_that_takes_no_null_means_absent() -> None:
    assert _restored(WithDefault, {"name": "a", "count": None}) == {"name": "a"}
    assert _restored(WithDefault, {"name": "a", "count": 3}) == {"name": "a", "count": 3}


def test_a_null_the_contract_allows_is_kept() -> None:
    assert _restored(Contact, {"name": "a", "email": None}) == {"name": "a", "email": None}


def test_nulls_are_dropped_inside_lists_and_referenced_definitions() -> None:
    schema = {
        "type": "object",
        "properties": {
            "people": {"type": "array", "items": {"$ref": "#/$defs/P"}},
        },
        "required": ["people"],
        "$defs": {
            "P": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                "required": ["name"],
            }
        },
    }
    answer = {"people": [{"name": "a", "age": None}, {"name": "b", "age": 4}]}
    assert _restored(schema, answer) == {"people": [{"name": "a"}, {"name": "b", "age": 4}]}


def test_a_required_null_is_left_for_the_validator_to_report() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    spec = _spec(schema)
    plan = wire_plan(spec.schema, spec.strict, OPENAI)
    assert not plan.nullable  # nothing was made nullable: the text is passed through
    assert restore('{"a": null}', plan, spec.schema) == '{"a": null}'


def test_a_wrapped_root_is_unwrapped_and_anything_else_passed_through() -> None:
    spec = _spec(Tags)
    plan = wire_plan(spec.schema, spec.strict, OPENAI)
    assert plan.wrapped
    assert restore('{"value": ["a", "b"]}', plan, spec.schema) == '["a", "b"]'
    assert restore('["a"]', plan, spec.schema) == '["a"]'
    assert restore("not json", plan, spec.schema) == "not json"


def _answering(content: str, bodies: list[dict[str, Any]]) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(
            200,
            json={
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def _generate(contract: type[BaseModel], content: str) -> tuple[Any, dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    provider = OpenAICompatProvider(
        "gpt-4o-mini", api_key="k", http_client=_answering(content, bodies), max_retries=0
    )
    with Client(Settings(), providers={"gpt": provider}) as client:
        result = client.generate("hi", contract=contract, model="gpt")
    return result.output, bodies[0]


def test_openai_round_trip_of_an_optional_field() -> None:
    output, body = _generate(WithDefault, '{"name": "a", "count": null}')
    assert output == WithDefault(name="a", count=0)
    json_schema = body["response_format"]["json_schema"]
    assert json_schema["strict"] is True
    assert json_schema["schema"]["required"] == ["name", "count"]


def test_openai_round_trip_of_a_list_root() -> None:
    output, body = _generate(Tags, '{"value": ["x", "y"]}')
    assert output == Tags(["x", "y"])
    assert body["response_format"]["json_schema"]["schema"]["properties"]["value"]["type"] == (
        "array"
    )


def test_openai_round_trip_of_a_recursive_model() -> None:
    output, _ = _generate(Node, '{"label": "r", "children": [{"label": "c", "children": []}]}')
    assert output == Node(label="r", children=[Node(label="c", children=[])])
