"""Closing objects (`additionalProperties: false`) in the enforcement schema never rejects a
value the contract accepts: objects whose properties are joined with others beside them stay
open, so the local grammar compiles them and strict profiles refuse them by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tether import Capabilities, Contract
from tether.contracts.validator import SchemaValidator
from tether.errors import SchemaError
from tether.providers.grammar import GrammarError, compile_json_schema
from tether.providers.schema_profiles import wire_plan

_S = {"type": "string"}
_I = {"type": "integer"}

BESIDE_ANY_OF = {
    "type": "object",
    "properties": {"a": _S},
    "required": ["a"],
    "anyOf": [
        {"properties": {"b": _I}, "required": ["b"]},
        {"properties": {"c": _I}, "required": ["c"]},
    ],
}
BESIDE_REF = {
    "type": "object",
    "properties": {"a": _S},
    "required": ["a"],
    "$ref": "#/$defs/Base",
    "$defs": {"Base": {"type": "object", "properties": {"b": _I}, "required": ["b"]}},
}
BESIDE_IF = {
    "type": "object",
    "properties": {"kind": _S},
    "required": ["kind"],
    "if": {"properties": {"kind": {"const": "x"}}},
    "then": {"properties": {"extra": _S}, "required": ["extra"]},
}


@pytest.mark.parametrize(
    ("schema", "valid"),
    [
        (BESIDE_ANY_OF, {"a": "x", "b": 1}),
        (BESIDE_REF, {"a": "x", "b": 1}),
        (BESIDE_IF, {"kind": "x", "extra": "y"}),
    ],
    ids=["anyOf", "$ref", "if-then"],
)
def test_joined_objects_stay_open_and_satisfiable(schema: dict[str, Any], valid: Any) -> None:
    enforced, strict = Contract.from_schema(schema).enforcement_schema()
    assert not strict
    assert SchemaValidator(enforced).is_valid(valid)
    assert "additionalProperties" not in json.dumps(enforced)
    compile_json_schema(enforced)  # llguidance refuses an unsatisfiable schema
    for engine in ("openai", "anthropic"):
        caps = Capabilities(supports_json_schema=True, supports_tools=True, engine=engine)
        plan = wire_plan(enforced, strict, caps)
        assert "additionalProperties" in {p.keyword for p in plan.problems}


def test_plain_objects_and_union_branches_are_closed() -> None:
    schema = {
        "type": "object",
        "properties": {
            "inner": {"type": "object", "properties": {"x": _S}, "required": ["x"]},
            "pet": {
                "anyOf": [
                    {"type": "object", "properties": {"cat": _S}, "required": ["cat"]},
                    {"type": "object", "properties": {"dog": _S}, "required": ["dog"]},
                ]
            },
        },
        "required": ["inner", "pet"],
    }
    enforced, strict = Contract.from_schema(schema).enforcement_schema()
    assert strict
    assert enforced["additionalProperties"] is False
    assert enforced["properties"]["inner"]["additionalProperties"] is False
    for branch in enforced["properties"]["pet"]["anyOf"]:
        assert branch["additionalProperties"] is False


MASKBENCH = sorted((Path(__file__).parents[1] / "data" / "schemas" / "maskbench").glob("*.json"))


def test_closing_never_makes_a_maskbench_schema_unsatisfiable() -> None:
    """llguidance refuses a schema no value can meet: every schema it compiles as written
    still compiles once closed."""
    compiled = 0
    for path in MASKBENCH:
        schema = json.loads(path.read_text(encoding="utf-8"))["schema"]
        try:
            enforced, _ = Contract.from_schema(schema).enforcement_schema()
            compile_json_schema(schema)
        except (SchemaError, GrammarError):
            continue
        compile_json_schema(enforced)
        compiled += 1
    assert compiled > 250
