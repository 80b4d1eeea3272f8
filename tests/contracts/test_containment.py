"""Schema containment: answers with reasons and pointers, agrees with jsonschema-rs wherever
jsonschema-rs can decide, and handles what Pydantic generates (refs, unions, recursion)."""

from __future__ import annotations

from typing import Any, Literal

import jsonschema_rs
import pytest
from pydantic import BaseModel, Field

from tether.contracts.containment import contained

OBJ = {"type": "object"}
ONE = {"type": "array", "items": {"enum": [1]}}
ONE_TWO = {"type": "array", "items": {"enum": [1, 2]}}

# (inner, outer, contained?)
CASES: list[tuple[Any, Any, bool]] = [
    ({"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}, True),
    ({"enum": ["a", "b", "c"]}, {"enum": ["a", "b"]}, False),
    ({"const": 3}, {"type": "integer", "minimum": 1}, True),
    ({"const": 0}, {"type": "integer", "minimum": 1}, False),
    ({"type": "integer"}, {"type": "number"}, True),
    ({"type": "number", "maximum": 1}, {"type": "number", "maximum": 100}, True),
    ({"type": "number", "maximum": 100}, {"type": "number", "maximum": 1}, False),
    ({"type": "number", "exclusiveMaximum": 1}, {"type": "number", "maximum": 1}, True),
    ({"type": "number", "maximum": 1}, {"type": "number", "exclusiveMaximum": 1}, False),
    ({"type": "number", "multipleOf": 4}, {"type": "number", "multipleOf": 2}, True),
    ({"type": "string", "minLength": 2}, {"type": "string", "minLength": 1}, True),
    ({"type": "string"}, {"type": "string", "maxLength": 5}, False),
    ({"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^a"}, True),
    ({"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}, False),
    ({**OBJ, "required": ["a"]}, OBJ, True),
    (OBJ, {**OBJ, "required": ["a"]}, False),
    ({**OBJ, "additionalProperties": False}, OBJ, True),
    (OBJ, {**OBJ, "additionalProperties": False}, False),
    ({"type": "array", "items": {"enum": [1]}}, {"type": "array", "items": {"enum": [1, 2]}}, True),
    (
        {"type": "array", "items": {"enum": [1, 2]}},
        {"type": "array", "items": {"enum": [1]}},
        False,
    ),
    ({"type": "array", "maxItems": 2}, {"type": "array", "maxItems": 3}, True),
    ({"type": "array"}, {"type": "array", "maxItems": 3}, False),
    ({"type": "string"}, {"anyOf": [{"type": "string"}, {"type": "null"}]}, True),
    ({"anyOf": [{"type": "string"}, {"type": "null"}]}, {"type": "string"}, False),
    ({"type": "boolean"}, {"enum": [True, False]}, True),
    ({"type": "boolean"}, {"const": True}, False),
    (True, OBJ, False),
    (OBJ, True, True),
    (False, {"const": 1}, True),
]


def _library(inner: Any, outer: Any) -> str:
    found = jsonschema_rs.canonicalize(outer, validate_formats=True).covers(
        jsonschema_rs.canonicalize(inner, validate_formats=True)
    )
    return str(found.value)


@pytest.mark.parametrize(("inner", "outer", "expected"), CASES)
def test_containment(inner: Any, outer: Any, expected: bool) -> None:
    result = contained(inner, outer)
    assert result.holds is expected, result.reasons
    assert bool(result.reasons) is not expected
    # Never contradict jsonschema-rs where it is sure.
    assert _library(inner, outer) != ("no" if expected else "yes")


def test_reasons_name_the_keyword_and_the_pointer() -> None:
    old = {
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative"]}},
        "required": ["sentiment"],
    }
    new = {
        "type": "object",
        "properties": {"sentiment": {"enum": ["positive", "negative", "mixed"]}},
    }
    result = contained(new, old)
    found = {(r.keyword, r.pointer) for r in result.reasons}
    assert found == {("enum", "/properties/sentiment"), ("required", "")}
    enum = next(r for r in result.reasons if r.keyword == "enum")
    assert (
        enum.explain("new", "old")
        == "enum at /properties/sentiment: new allows 'mixed', old does not"
    )
    assert enum.proven


def test_keywords_not_compared_are_not_provably_contained() -> None:
    outer = {"type": "string", "if": {"minLength": 2}, "then": {"pattern": "^a"}}
    inner = {"type": "string", "if": {"minLength": 3}, "then": {"pattern": "^a"}}
    result = contained(inner, outer)
    assert not result.holds
    assert {r.keyword for r in result.reasons} == {"if"}
    assert not any(r.proven for r in result.reasons)


def test_local_references_are_followed_and_recursion_ends() -> None:
    def tree(values: list[int]) -> dict[str, Any]:
        node = {
            "type": "object",
            "properties": {
                "value": {"enum": values},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
        }
        return {"$ref": "#/$defs/Node", "$defs": {"Node": node}}

    assert contained(tree([1]), tree([1, 2])).holds
    result = contained(tree([1, 2]), tree([1]))
    assert [r.pointer for r in result.reasons] == ["/$defs/Node/properties/value"]


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=0, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Pets(BaseModel):
    pets: list[Cat | Dog] = Field(max_length=5)
    owner: str


class FewerLives(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=0, le=7)


class NarrowerPets(BaseModel):
    pets: list[FewerLives | Dog] = Field(max_length=3)
    owner: str


def test_pydantic_schemas() -> None:
    pets = Pets.model_json_schema()
    narrower = NarrowerPets.model_json_schema()
    assert contained(pets, pets).holds
    assert contained(narrower, pets).holds
    result = contained(pets, narrower)
    assert not result.holds
    assert {r.keyword for r in result.reasons} >= {"maximum", "maxItems"}


def test_refuses_to_recurse_without_bound() -> None:
    inner: dict[str, Any] = {"type": "array"}
    outer: dict[str, Any] = {"type": "array"}
    for schema in (inner, outer):
        node = schema
        for _ in range(500):
            node["items"] = {"type": "array"}
            node = node["items"]
    outer_leaf = outer
    while "items" in outer_leaf:
        outer_leaf = outer_leaf["items"]
    outer_leaf["maxItems"] = 1
    result = contained(inner, outer)
    assert not result.holds
