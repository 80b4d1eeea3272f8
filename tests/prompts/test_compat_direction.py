"""Semantic versioning points the right way: an output contract may only narrow, an inputs
schema may only widen, decided by containment keyword by keyword."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tether.errors import IncompatibleChange
from tether.prompts.compat import compare
from tether.prompts.loader import load_spec
from tether.prompts.registry import Registry
from tether.prompts.semver import Bump
from tether.prompts.spec import PromptSpec

from .specs import spec_data

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "prompts" / "feedback-sentiment"

S = {"type": "string"}
N = {"type": "number"}


def _field(schema: Any, **around: Any) -> dict[str, Any]:
    """`schema` as the property `v` of an object (how outputs and inputs are written)."""
    return {"type": "object", "properties": {"v": schema}, **around}


# name: (wider, narrower, pointer of the difference). Every value the narrower schema allows,
# the wider one allows too; not the other way round.
NARROWING: dict[str, tuple[Any, Any, str]] = {
    "enum": (_field({"enum": ["a", "b", "c"]}), _field({"enum": ["a", "b"]}), "/properties/v"),
    "enum added": (_field(S), _field({"enum": ["a", "b"]}), "/properties/v"),
    "const": (_field({"enum": ["a", "b"]}), _field({"const": "a"}), "/properties/v"),
    "type number to integer": (_field(N), _field({"type": "integer"}), "/properties/v"),
    "type without null": (_field({"type": ["string", "null"]}), _field(S), "/properties/v"),
    "minimum": (_field({**N, "minimum": 0}), _field({**N, "minimum": 1}), "/properties/v"),
    "maximum": (_field({**N, "maximum": 100}), _field({**N, "maximum": 1}), "/properties/v"),
    "maximum added": (_field(N), _field({**N, "maximum": 1}), "/properties/v"),
    "exclusiveMaximum": (
        _field({**N, "maximum": 1}),
        _field({**N, "exclusiveMaximum": 1}),
        "/properties/v",
    ),
    "multipleOf": (_field({**N, "multipleOf": 2}), _field({**N, "multipleOf": 4}), "/properties/v"),
    "minLength": (_field(S), _field({**S, "minLength": 1}), "/properties/v"),
    "maxLength": (_field({**S, "maxLength": 10}), _field({**S, "maxLength": 3}), "/properties/v"),
    "pattern added": (_field(S), _field({**S, "pattern": "^a"}), "/properties/v"),
    "required": (_field(S), _field(S, required=["v"]), ""),
    "new optional property (extra fields allowed)": (
        _field(S),
        {"type": "object", "properties": {"v": S, "w": N}},
        "/properties/w",
    ),
    "additionalProperties closed": (_field(S), _field(S, additionalProperties=False), ""),
    "additionalProperties schema": (
        _field(S, additionalProperties=S),
        _field(S, additionalProperties={**S, "maxLength": 3}),
        "/additionalProperties",
    ),
    "items": (
        _field({"type": "array", "items": {"enum": [1, 2]}}),
        _field({"type": "array", "items": {"enum": [1]}}),
        "/properties/v/items",
    ),
    "prefixItems": (
        _field({"type": "array", "prefixItems": [N]}),
        _field({"type": "array", "prefixItems": [{"type": "integer"}]}),
        "/properties/v/prefixItems/0",
    ),
    "maxItems": (
        _field({"type": "array", "items": S}),
        _field({"type": "array", "items": S, "maxItems": 3}),
        "/properties/v",
    ),
    "nested $defs": (
        {**_field({"$ref": "#/$defs/Kind"}), "$defs": {"Kind": {"enum": ["a", "b"]}}},
        {**_field({"$ref": "#/$defs/Kind"}), "$defs": {"Kind": {"enum": ["a"]}}},
        "/$defs/Kind",
    ),
    "anyOf branch dropped": (
        _field({"anyOf": [S, {"type": "null"}]}),
        _field(S),
        "/properties/v/anyOf/1",  # in the union: the branch the other schema lacks
    ),
}

# Neither contains the other, or containment cannot be shown: breaking both ways.
UNRELATED: dict[str, tuple[Any, Any]] = {
    "different patterns": (_field({**S, "pattern": "^a"}), _field({**S, "pattern": "^b"})),
    "type changed": (_field(S), _field(N)),
    "enum swapped": (_field({"enum": ["a", "b"]}), _field({"enum": ["b", "c"]})),
    "keyword not compared": (
        _field({**S, "not": {"const": "a"}}),
        _field({**S, "not": {"const": "b"}}),
    ),
}


def _output(schema: Any) -> PromptSpec:
    return PromptSpec.model_validate(spec_data(output={"schema": schema}, examples=[]))


def _inputs(schema: Any) -> PromptSpec:
    return PromptSpec.model_validate(spec_data(inputs=schema, examples=[]))


@pytest.mark.parametrize("name", list(NARROWING))
def test_outputs_may_narrow_but_not_widen(name: str) -> None:
    wider, narrower, pointer = NARROWING[name]
    narrowed = compare(_output(wider), _output(narrower))
    assert narrowed.needed == Bump.MINOR, narrowed.changes
    assert all("every output the new contract allows" in c.what for c in narrowed.changes)
    widened = compare(_output(narrower), _output(wider))
    assert widened.needed == Bump.MAJOR, widened.changes
    majors = [c.what for c in widened.changes if c.bump == Bump.MAJOR]
    assert any(f"at {pointer or '/'}:" in what for what in majors), majors
    assert all(what.startswith("output: ") for what in majors)


@pytest.mark.parametrize("name", list(NARROWING))
def test_inputs_may_widen_but_not_narrow(name: str) -> None:
    wider, narrower, pointer = NARROWING[name]
    widened = compare(_inputs(narrower), _inputs(wider))
    assert widened.needed == Bump.MINOR, widened.changes
    assert all("every input the old version accepted" in c.what for c in widened.changes)
    narrowed = compare(_inputs(wider), _inputs(narrower))
    assert narrowed.needed == Bump.MAJOR, narrowed.changes
    majors = [c.what for c in narrowed.changes if c.bump == Bump.MAJOR]
    assert any(f"at {pointer or '/'}:" in what for what in majors), majors
    assert all(w.startswith("inputs: ") for w in majors)
    # Shown refused, or (multipleOf, pattern) not shown compatible: breaking either way.
    assert all("accepted are refused" in w or "cannot be shown" in w for w in majors)


@pytest.mark.parametrize("name", list(UNRELATED))
def test_unrelated_changes_are_breaking_both_ways(name: str) -> None:
    first, second = UNRELATED[name]
    for make in (_output, _inputs):
        assert compare(make(first), make(second)).needed == Bump.MAJOR
        assert compare(make(second), make(first)).needed == Bump.MAJOR


def test_different_patterns_say_they_cannot_be_compared() -> None:
    first, second = UNRELATED["different patterns"]
    report = compare(_output(first), _output(second))
    (change,) = report.changes
    assert "pattern at /properties/v" in change.what
    assert "different patterns are not compared" in change.what
    assert "cannot be shown" in change.what


def test_documentation_only_is_a_patch() -> None:
    before = _field({**S, "description": "the value"}, title="Out")
    after = _field({**S, "description": "the value, in English"}, title="Output")
    for make in (_output, _inputs):
        report = compare(make(before), make(after))
        assert report.needed == Bump.PATCH, report.changes


def test_a_new_optional_field_in_a_closed_object_is_breaking_for_outputs() -> None:
    closed = _field(S, additionalProperties=False)
    grown = {"type": "object", "properties": {"v": S, "w": N}, "additionalProperties": False}
    report = compare(_output(closed), _output(grown))
    assert report.needed == Bump.MAJOR
    assert any("allows a field 'w'" in c.what for c in report.changes)
    assert compare(_inputs(closed), _inputs(grown)).needed == Bump.MINOR


def test_the_report_lists_the_schema_edits() -> None:
    report = compare(_output(_field({"enum": ["a", "b"]})), _output(_field({"enum": ["a", "c"]})))
    assert "output: enum gains 'c' and loses 'b' at /properties/v" in report.edits


# -- through the registry ------------------------------------------------------------------------


SENTIMENT = {
    "type": "object",
    "properties": {
        "sentiment": {"enum": ["positive", "neutral", "negative"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["sentiment", "confidence"],
}


def _sentiment(version: str, **changes: Any) -> PromptSpec:
    schema = {**SENTIMENT, "properties": {**SENTIMENT["properties"], **changes}}
    return PromptSpec.model_validate(
        spec_data(version, name="sentiment", output={"schema": schema}, examples=[])
    )


def _push(registry: Registry, spec: PromptSpec) -> Any:
    return registry.push(spec, source="", author="ada", message="")


def test_a_widened_output_enum_is_refused_as_a_minor_version(registry: Registry) -> None:
    _push(registry, _sentiment("1.0.0"))
    mixed = {"enum": ["positive", "neutral", "negative", "mixed"]}
    with pytest.raises(IncompatibleChange) as err:
        _push(registry, _sentiment("1.1.0", sentiment=mixed))
    assert err.value.needed == "major"
    assert (
        "output: enum at /properties/sentiment: the new contract allows 'mixed', the old one "
        "does not: consumers can receive a value the old contract did not allow"
    ) in err.value.reasons
    assert _push(registry, _sentiment("2.0.0", sentiment=mixed)).created


def test_a_relaxed_output_constraint_is_refused_as_a_minor_version(registry: Registry) -> None:
    _push(registry, _sentiment("1.0.0"))
    percent = {"type": "number", "minimum": 0, "maximum": 100}
    with pytest.raises(IncompatibleChange) as err:
        _push(registry, _sentiment("1.1.0", confidence=percent))
    assert err.value.needed == "major"
    assert any("maximum at /properties/confidence" in r for r in err.value.reasons)


def test_a_narrowed_output_enum_is_a_minor_version(registry: Registry) -> None:
    _push(registry, _sentiment("1.0.0"))
    outcome = _push(registry, _sentiment("1.1.0", sentiment={"enum": ["positive", "negative"]}))
    assert outcome.created
    assert outcome.report is not None
    assert outcome.report.needed == Bump.MINOR


def test_the_shipped_example_is_still_a_minor_version(registry: Registry) -> None:
    first, second = load_spec(EXAMPLE / "1.0.0.yaml"), load_spec(EXAMPLE / "1.1.0.yaml")
    _push(registry, first.spec)
    outcome = _push(registry, second.spec)
    assert outcome.created
    assert outcome.report is not None
    assert outcome.report.needed == Bump.MINOR
    assert any("new optional field 'themes'" in c.what for c in outcome.report.changes)
