from __future__ import annotations

from pathlib import Path

import pytest

from tether import Enforcement, FakeProvider, UnsupportedSchema
from tether.contracts.preflight import PreflightReport, preflight
from tether.providers.anthropic import AnthropicProvider
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
