"""OpenAICompatProvider against a real OpenAI-compatible server: llama_cpp.server (from
llama-cpp-python) serving SmolLM2-135M-Instruct on a local port.

What that server does with `response_format` (llama_cpp/server/types.py, llama_chat_format.py):
its request model types `response_format` as {"type": "text" | "json_object", "schema"?}, so
`{"type": "json_schema", ...}` -- what tether sends by default -- is refused with a validation
error (status 500). The schema is enforced (compiled to a grammar) only when it comes as
`{"type": "json_object", "schema": {...}}`; a bare `json_object` only constrains output to some
JSON value. Such servers need `capabilities.supports_json_schema = false`.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx2
import pytest
from pydantic import BaseModel

from tether import (
    Client,
    Contract,
    ModelSettings,
    ProviderRejected,
    Settings,
)

from .helpers import Generate, LlamaServer

pytestmark = pytest.mark.server


class Color(BaseModel):
    color: Literal["red", "green", "blue"]


@pytest.fixture
def server_client(llama_server: LlamaServer) -> Any:
    common: dict[str, Any] = {
        "provider": "openai",
        "base_url": llama_server.base_url,
        "upstream_model": llama_server.model_id,
        "max_retries": 0,
        "timeout_s": 60,
    }
    settings = Settings(
        default_model="smol",
        models={
            "smol": ModelSettings(**common),
            "smol-json-object": ModelSettings(
                **common,
                capabilities={"supports_json_schema": False, "schema_in_json_object": True},
            ),
        },
    )
    with Client(settings) as client:
        yield client


async def test_plain_text_generation(server_client: Client, generate: Generate):
    result = await generate(server_client, "Say hello in one short sentence.", max_tokens=16)
    assert isinstance(result.output, str)
    assert result.output.strip()
    assert result.provider == "openai"
    assert result.usage.input_tokens > 0
    assert 0 < result.usage.output_tokens <= 16
    assert len(result.attempts) == 1


def test_default_json_schema_format_is_refused_by_the_server(server_client: Client):
    with pytest.raises(ProviderRejected) as caught:
        server_client.generate("Name a color.", contract=Color, model="smol", max_tokens=32)
    assert caught.value.status == 500  # llama_cpp.server reports request validation as 500
    assert "json_object" in str(caught.value)  # "Input should be 'text' or 'json_object'"


def test_server_enforces_a_schema_given_with_json_object(llama_server: LlamaServer):
    """The enforcing path, sent directly: the prompt does not mention the schema at all."""
    schema = Contract.from_model(Color).enforcement_schema()[0]
    response = httpx2.post(
        f"{llama_server.base_url}/chat/completions",
        json={
            "model": llama_server.model_id,
            "messages": [{"role": "user", "content": "Name a color."}],
            "max_tokens": 32,
            "temperature": 0.0,
            "response_format": {"type": "json_object", "schema": schema},
        },
        timeout=60,
        trust_env=False,
    )
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    Color.model_validate_json(choice["message"]["content"])


async def test_structured_call_returns_a_validated_object(
    server_client: Client, generate: Generate
):
    result = await generate(
        server_client,
        "Name a color.",
        contract=Color,
        model="smol-json-object",
        max_tokens=48,
        max_repairs=0,
    )
    assert isinstance(result.output, Color)
    assert result.usage.output_tokens > 0
