from __future__ import annotations

import pytest
from pydantic import BaseModel

from tether import Client, FakeProvider, ModelNotFound, Settings


class Item(BaseModel):
    name: str


def test_unknown_model(client: Client) -> None:
    with pytest.raises(ModelNotFound) as err:
        client.generate("x", model="nope")
    assert "fake" in err.value.known


def test_models_lists_capabilities_and_prices(client: Client) -> None:
    (info,) = client.models()
    assert (info.name, info.provider, info.default) == ("fake", "fake", True)
    assert info.price.output_per_million == 2.0
    assert info.capabilities.supports_json_schema


def test_contracts_are_built_once(client: Client) -> None:
    assert client.contract(Item) is client.contract(Item)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert client.contract(schema) is client.contract(dict(schema))


def test_bad_messages_are_refused_clearly(client: Client) -> None:
    with pytest.raises(ValueError, match="role"):
        client.generate([{"role": "wizard", "content": "hi"}])
    with pytest.raises(ValueError, match="at least one"):
        client.generate([])


def test_fake_provider_without_responses_says_what_to_do(client: Client) -> None:
    from tether import ProviderError

    with pytest.raises(ProviderError, match="enqueue"):
        client.generate("x")


def test_fake_provider_responder(settings: Settings) -> None:
    fake = FakeProvider(respond=lambda call: call.messages[-1].content.upper())
    with Client(settings, providers={"fake": fake}) as client:
        assert client.generate("shout").output == "SHOUT"
