"""Repair turns: the failed output, the validator's errors, and the schema instruction the first
attempt had, on every provider that adds one (the local model, OpenAI-compatible json_object)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

import httpx2
import pytest
from pydantic import BaseModel

from tether import Client, FakeProvider, Settings
from tether.contracts.instructions import schema_instruction
from tether.messages import Message, ProviderCall
from tether.providers.llamacpp import with_schema_instruction
from tether.providers.openai_compat import OpenAICompatProvider
from tether.providers.prompt_format import ChatTemplateFormat, TranscriptFormat


class Label(BaseModel):
    label: Literal["spam", "ham"]


BAD = '{"label": "eggs"}'
GOOD = '{"label": "spam"}'
ZERO_SHOT = [
    {"role": "system", "content": "You sort mail."},
    {"role": "user", "content": "classify: buy now"},
]
FEW_SHOT = [
    {"role": "user", "content": "classify: lunch at noon?"},
    {"role": "assistant", "content": '{"label": "ham"}'},
    {"role": "user", "content": "classify: buy now"},
]
SIMPLE_TEMPLATE = (
    "{% for m in messages %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endfor %}<assistant>"
)
FORMATS = {
    "transcript": TranscriptFormat(),
    "chat template": ChatTemplateFormat(SIMPLE_TEMPLATE, eos_token="</s>", bos_token="<s>"),
}


def _instruction(call: ProviderCall) -> str:
    assert call.output is not None
    return schema_instruction(call.output).content


def test_repair_calls_say_which_messages_repair(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(BAD, BAD, GOOD)
    client.generate(ZERO_SHOT, contract=Label, max_repairs=2)
    first, *repairs = fake.calls
    assert first.repair_turns == 0
    assert first.prompt == first.messages
    assert len(repairs) == 2
    for repair in repairs:
        assert repair.repair_turns == 2
        assert repair.prompt == first.messages
        assert repair.output == first.output
        assert repair.messages[-2] == Message("assistant", BAD)
        assert "at /label" in repair.messages[-1].content


@pytest.mark.parametrize("form", list(FORMATS))
@pytest.mark.parametrize(("prompt", "instructed"), [(ZERO_SHOT, 1), (FEW_SHOT, 0)])
def test_the_local_model_gets_the_first_attempts_instruction_on_every_repair(
    client: Client, fake: FakeProvider, form: str, prompt: list[dict[str, str]], instructed: int
) -> None:
    """Zero-shot: the instruction on every attempt; few-shot: on none (the examples show it)."""
    fake.enqueue(BAD, BAD, GOOD)
    client.generate(prompt, contract=Label, max_repairs=2)
    rendered = [FORMATS[form].render(with_schema_instruction(call)).text for call in fake.calls]
    instruction = _instruction(fake.calls[0])
    assert [text.count(instruction) for text in rendered] == [instructed] * 3
    for text in rendered[1:]:
        assert BAD in text
        assert "at /label" in text


# -- OpenAI-compatible servers ----------------------------------------------------------------


def _chat(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


@pytest.mark.parametrize("json_schema", [False, True], ids=["json_object", "json_schema"])
def test_an_openai_compatible_repair_keeps_the_schema(json_schema: bool) -> None:
    answers = iter([BAD, GOOD])
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json=_chat(next(answers)))

    capabilities = dataclasses.replace(
        OpenAICompatProvider.default_capabilities, supports_json_schema=json_schema
    )
    provider = OpenAICompatProvider(
        "m",
        api_key="sk-test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
        max_retries=0,
        capabilities=capabilities,
    )
    with Client(Settings(), providers={"gpt": provider}) as client:
        result = client.generate(ZERO_SHOT, contract=Label, model="gpt")
    assert result.repairs == 1
    first, repair = bodies
    assert repair["response_format"] == first["response_format"]
    assert repair["messages"][: len(first["messages"])] == first["messages"]
    assert repair["messages"][-2] == {"role": "assistant", "content": BAD}
    if not json_schema:  # the schema travels in a system message: on every attempt
        assert first["messages"][0]["role"] == "system"
        assert '"label"' in first["messages"][0]["content"]
