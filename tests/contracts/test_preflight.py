from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from tether import Contract, Enforcement, FakeProvider, ModelSettings, Settings, UnsupportedSchema
from tether.contracts.preflight import PreflightReport, preflight
from tether.providers.anthropic import AnthropicProvider
from tether.providers.base import Provider
from tether.providers.gguf_file import ModelFile
from tether.providers.llamacpp import LlamaCppProvider
from tether.providers.openai_compat import OpenAICompatProvider

SCHEMA = {
    "type": "object",
    "properties": {
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
        "score": {"type": "number", "minimum": 0},
    },
    "required": ["tags", "score"],
}


def _local(tmp_path: Path) -> LlamaCppProvider:
    # Pre-flight only compiles grammars: the model file is never opened.
    return LlamaCppProvider(
        ModelFile(tmp_path / "unused.gguf", None), model="m", cache_dir=tmp_path
    )


def _levels(report: PreflightReport) -> dict[str, Enforcement]:
    return {row.keyword: row.enforcement for row in report.keywords}


def test_local_grammar_enforces_most_keywords_and_validates_the_rest(tmp_path: Path) -> None:
    report = preflight(SCHEMA, _local(tmp_path))
    assert report.ok
    levels = _levels(report)
    assert levels["enum"] is Enforcement.DECODING
    assert levels["minimum"] is Enforcement.DECODING
    assert levels["uniqueItems"] is Enforcement.VALIDATED
    assert report.enforcement == "grammar-constrained decoding"


def test_local_grammar_refuses_what_it_cannot_compile(tmp_path: Path) -> None:
    schema = {"type": "string", "pattern": "(?=a)b"}  # look-ahead: no grammar can express it
    report = preflight(schema, _local(tmp_path))
    assert not report.ok
    with pytest.raises(UnsupportedSchema) as err:
        report.raise_for_problems()
    assert "look-around" in str(err.value)
    assert err.value.fix


def test_openai_strict_mode_keywords() -> None:
    report = preflight(SCHEMA, OpenAICompatProvider("gpt", api_key="k"))
    levels = _levels(report)
    assert levels["enum"] is Enforcement.DECODING
    assert levels["uniqueItems"] is Enforcement.VALIDATED


def test_anthropic_needs_an_object_root() -> None:
    provider = AnthropicProvider("claude", api_key="k")
    assert preflight(SCHEMA, provider).ok
    report = preflight({"type": "array", "items": {"type": "string"}}, provider)
    assert not report.ok
    assert "wrap" in report.problems[0].reason


def test_declared_unsupported_keywords_are_refused() -> None:
    from tether import Capabilities, SchemaSupport

    provider = FakeProvider(
        capabilities=Capabilities(schema=SchemaSupport(unsupported={"uniqueItems": "no sets"}))
    )
    report = preflight(SCHEMA, provider)
    assert [(p.keyword, p.pointer) for p in report.problems] == [
        ("uniqueItems", "/properties/tags")
    ]


# -- the report describes the exact request (schema profiles) ----------------------------------


class Contact(BaseModel):
    name: str
    email: str | None = None


class WithDefault(BaseModel):
    name: str
    count: int = 0


class Sentiment(BaseModel):  # the README's example
    sentiment: Literal["positive", "neutral", "negative"]
    confidence: float = Field(ge=0, le=1, description="how sure you are of the sentiment")


def _report(contract: type[BaseModel] | dict[str, Any], provider: Provider) -> PreflightReport:
    found = (
        Contract.from_model(contract)
        if isinstance(contract, type)
        else Contract.from_schema(contract)
    )
    schema, strict = found.enforcement_schema()
    return preflight(schema, provider, strict=strict)


def test_optional_fields_keep_openai_strict_and_enforced() -> None:
    # Sent required and nullable with strict: true, so the report stays "during decoding".
    report = _report(WithDefault, OpenAICompatProvider("gpt", api_key="k"))
    assert report.ok
    assert set(_levels(report).values()) == {Enforcement.DECODING}
    assert report.enforcement == "strict JSON schema mode"


def test_an_optional_field_turns_strict_off_on_a_generic_server_and_the_report_says_so() -> None:
    provider = OpenAICompatProvider("m", api_key="k", base_url="http://127.0.0.1:9/v1")
    assert provider.capabilities.engine == "generic"
    report = _report(WithDefault, provider)
    assert report.ok
    assert set(_levels(report).values()) == {Enforcement.VALIDATED}
    assert report.enforcement == "validation after generation"
    # The same schema, closed and fully required, goes strict and is enforced.
    strict = _report(Contact, provider)
    assert _levels(strict)["properties"] is Enforcement.VALIDATED  # email is optional there too
    closed = {
        "type": "object",
        "properties": {"a": {"type": "string", "minLength": 2}},
        "required": ["a"],
    }
    levels = _levels(_report(closed, provider))
    assert levels["type"] is Enforcement.DECODING
    assert levels["minLength"] is Enforcement.VALIDATED  # not credited to an unknown server


def test_engines_that_decode_whatever_strict_says() -> None:
    caps = dataclasses.replace(OpenAICompatProvider.default_capabilities, engine="vllm")
    provider = OpenAICompatProvider(
        "m", api_key="k", base_url="http://vllm:8000/v1", capabilities=caps
    )
    levels = _levels(_report(WithDefault, provider))
    assert levels["type"] is Enforcement.DECODING
    assert levels["required"] is Enforcement.DECODING


def test_json_object_fallback_validates_every_keyword_after() -> None:
    caps = dataclasses.replace(
        OpenAICompatProvider.default_capabilities, supports_json_schema=False
    )
    report = _report(Sentiment, OpenAICompatProvider("gpt", api_key="k", capabilities=caps))
    assert report.ok
    assert set(_levels(report).values()) == {Enforcement.VALIDATED}
    assert report.enforcement == "validation after generation"


def test_json_object_with_the_schema_beside_it_is_enforced_by_the_engine() -> None:
    caps = dataclasses.replace(
        OpenAICompatProvider.default_capabilities,
        supports_json_schema=False,
        schema_in_json_object=True,
        engine="llama-server",
    )
    provider = OpenAICompatProvider("m", api_key="k", base_url="http://h/v1", capabilities=caps)
    levels = _levels(_report(Sentiment, provider))
    assert levels["enum"] is Enforcement.DECODING
    assert levels["minimum"] is Enforcement.VALIDATED


def test_a_bare_object_is_json_mode_and_validated_after() -> None:
    for provider in (
        OpenAICompatProvider("gpt", api_key="k"),
        AnthropicProvider("claude", api_key="k"),
    ):
        report = _report({"type": "object"}, provider)
        assert report.ok
        assert _levels(report) == {"type": Enforcement.VALIDATED}


def test_anthropic_bounds_are_validated_after_openai_decodes_them() -> None:
    anthropic = _levels(_report(Sentiment, AnthropicProvider("claude", api_key="k")))
    assert anthropic["minimum"] is Enforcement.VALIDATED
    assert anthropic["maximum"] is Enforcement.VALIDATED
    assert anthropic["enum"] is Enforcement.DECODING
    openai = _levels(_report(Sentiment, OpenAICompatProvider("gpt", api_key="k")))
    assert openai["minimum"] is Enforcement.DECODING


def test_a_map_is_refused_with_the_keyword_and_where() -> None:
    class Counts(BaseModel):
        counts: dict[str, int]

    for provider in (
        OpenAICompatProvider("gpt", api_key="k"),
        AnthropicProvider("claude", api_key="k"),
    ):
        report = _report(Counts, provider)
        assert [(p.keyword, p.pointer) for p in report.problems] == [
            ("additionalProperties", "/properties/counts")
        ]
        assert _levels(report)["additionalProperties"] is Enforcement.UNSUPPORTED
        with pytest.raises(UnsupportedSchema, match="additionalProperties"):
            report.raise_for_problems()


def test_an_unknown_format_is_dropped_by_llguidance_and_validated_after(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {
            "when": {"type": "string", "format": "not-a-format"},
            "n": {"type": "integer", "minimum": 0},
        },
        "required": ["when", "n"],
    }
    report = preflight(schema, _local(tmp_path))
    assert report.ok
    levels = _levels(report)
    assert levels["format"] is Enforcement.VALIDATED
    assert levels["minimum"] is Enforcement.DECODING
    known = preflight({"type": "string", "format": "email"}, _local(tmp_path))
    assert _levels(known)["format"] is Enforcement.DECODING


def test_engine_comes_from_the_model_settings() -> None:
    settings = ModelSettings(
        provider="openai", base_url="http://ollama:11434/v1", capabilities={"engine": "ollama"}
    )
    provider = OpenAICompatProvider.from_settings("m", settings, Settings())
    assert provider.capabilities.engine == "ollama"
    assert OpenAICompatProvider("gpt", api_key="k").capabilities.engine == "openai"
    assert AnthropicProvider("claude", api_key="k").capabilities.engine == "anthropic"
    with pytest.raises(ValidationError, match="engine"):
        ModelSettings(provider="openai", capabilities={"engine": "vllm2"})
