"""What tether sends to OpenAI and Anthropic for a contract is what their own SDKs' converters
send (openai.lib._pydantic.to_strict_json_schema, anthropic's transform_schema), or a documented
deviation from it, or a pre-flight refusal naming the keyword: never a schema that carries what
the vendor documents as unsupported in strict mode."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anthropic.lib._parse._transform import transform_schema
from openai.lib._pydantic import _ensure_strict_json_schema, to_strict_json_schema
from pydantic import BaseModel

from tether import Capabilities, Contract
from tether.contracts.keywords import keyword_uses
from tether.errors import SchemaError
from tether.providers.schema_profiles import WirePlan, wire_plan

from .profile_cases import MODELS, SCHEMAS

OPENAI = Capabilities(supports_json_schema=True, engine="openai")
ANTHROPIC = Capabilities(supports_tools=True, engine="anthropic")

# From the vendors' documentation, written out here rather than read from the profiles.
# OpenAI, "Structured Outputs" / supported schemas: keywords outside the per-type lists, and the
# composition keywords it names as unsupported.
OPENAI_UNSUPPORTED = frozenset(
    {"allOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
     "minLength", "maxLength", "patternProperties", "propertyNames", "unevaluatedProperties",
     "unevaluatedItems", "minProperties", "maxProperties", "contains", "minContains",
     "maxContains", "uniqueItems", "prefixItems", "additionalItems", "discriminator", "examples"}
)  # fmt: skip
OPENAI_FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6",
                  "uuid"}  # fmt: skip
# Anthropic, "Structured outputs" / JSON Schema limitations.
ANTHROPIC_UNSUPPORTED = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
     "maxLength", "maxItems", "oneOf", "patternProperties", "propertyNames", "uniqueItems",
     "unevaluatedProperties", "minProperties", "maxProperties", "prefixItems", "not", "if",
     "then", "else", "dependentSchemas", "dependentRequired", "discriminator"}
)  # fmt: skip


@dataclass(frozen=True)
class Refused:
    keyword: str


SDK = "the vendor SDK's converter output"
JSON_MODE = "JSON mode, no schema"
Deviation = Callable[[dict[str, Any]], dict[str, Any]]
Expectation = str | Refused | Deviation | dict[str, Any]


def _at(schema: dict[str, Any], where: str) -> dict[str, Any]:
    node = schema
    for part in [p for p in where.split("/") if p]:
        node = node[part]
    return node


def nullable(*names: str) -> Deviation:
    """OpenAI: an optional field goes out required and nullable (the documented way to make
    a field optional in strict mode; the SDK sends it required, without null)."""

    def apply(schema: dict[str, Any]) -> dict[str, Any]:
        for name in names:
            prop = schema["properties"][name]
            outer = {k: prop.pop(k) for k in ("title", "description", "default") if k in prop}
            schema["properties"][name] = {"anyOf": [prop, {"type": "null"}], **outer}
        return schema

    return apply


def moved(where: str, *keys: str) -> Deviation:
    """OpenAI: a keyword its docs do not list goes into the description, as Anthropic's SDK
    does for its own list (OpenAI's SDK sends it, and the API refuses it)."""

    def apply(schema: dict[str, Any]) -> dict[str, Any]:
        node = _at(schema, where)
        note = "{" + ", ".join(f"{k}: {node.pop(k)}" for k in keys) + "}"
        node["description"] = (f"{node['description']}\n\n" if "description" in node else "") + note
        return schema

    return apply


def one_of_as_any_of(where: str) -> Deviation:
    """OpenAI: a oneOf of disjoint branches goes out as anyOf (strict mode has only anyOf);
    the OpenAPI discriminator hint goes into the description, as Anthropic's SDK does."""

    def apply(schema: dict[str, Any]) -> dict[str, Any]:
        node = _at(schema, where)
        node["anyOf"] = node.pop("oneOf")
        if "discriminator" in node:
            moved(where, "discriminator")(schema)
        return schema

    return apply


def wrapped(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI: a root that is not an object travels as {"value": ...}."""
    defs = {k: schema.pop(k) for k in ("$defs", "definitions") if k in schema}
    return {
        "type": "object",
        "properties": {"value": schema},
        "required": ["value"],
        "additionalProperties": False,
        **defs,
    }


# name -> (OpenAI, Anthropic)
EXPECTED: dict[str, tuple[Expectation, Expectation]] = {
    "Sentiment": (SDK, SDK),
    "Ticket": (SDK, SDK),
    "Contact": (SDK, SDK),
    "WithDefault": (nullable("count"), SDK),
    "Owner": (one_of_as_any_of("/properties/pet"), SDK),
    "AnyPet": (SDK, SDK),
    "Counts": (Refused("additionalProperties"), Refused("additionalProperties")),
    "Bounded": (moved("/properties/name", "maxLength", "minLength"), SDK),
    "Priced": (SDK, SDK),
    "Pair": (SDK, SDK),
    "Order": (SDK, SDK),
    "Paint": (SDK, SDK),
    "DescribedPaint": (SDK, SDK),
    "Person": (SDK, SDK),
    "Node": (SDK, Refused("$ref")),
    "Levels": (SDK, SDK),
    "Event": (SDK, SDK),
    "Link": (moved("/properties/url", "format", "maxLength", "minLength"), SDK),
    "Code": (SDK, SDK),
    "Point": (Refused("prefixItems"), Refused("prefixItems")),
    "Unique": (moved("/properties/tags", "uniqueItems"), SDK),
    "Scores": (SDK, SDK),
    "Open": (Refused("additionalProperties"), Refused("additionalProperties")),
    "Example": (moved("/properties/name", "examples"), SDK),
    "Level10": (Refused("properties"), SDK),
    "ManyOptional": (SDK, Refused("required")),
    "HugeEnum": (Refused("enum"), SDK),
    "Tags": (wrapped, Refused("type")),
    "array-root": (wrapped, Refused("type")),
    "enum-root": (wrapped, Refused("type")),
    "properties-beside-anyOf": (
        Refused("additionalProperties"),
        Refused("additionalProperties"),
    ),
    "overlapping-oneOf": (Refused("oneOf"), Refused("oneOf")),
    "disjoint-oneOf": (one_of_as_any_of("/properties/v"), SDK),
    "allOf-objects": (Refused("allOf"), Refused("allOf")),
    "patternProperties": (Refused("patternProperties"), Refused("patternProperties")),
    "minLength": (moved("/properties/x", "minLength"), SDK),
    "not": (moved("/properties/x", "not"), SDK),
    "if-then-beside-properties": (
        Refused("additionalProperties"),
        Refused("additionalProperties"),
    ),
    "dependentRequired": (moved("", "dependentRequired"), SDK),
    # Anthropic's transform handles `$defs` only: it turns `definitions` into description text
    # and leaves the references dangling. They are kept, rewritten like `$defs`.
    "definitions-chain": (
        SDK,
        {
            "type": "object",
            "properties": {"outer": {"$ref": "#/definitions/Outer"}},
            "required": ["outer"],
            "additionalProperties": False,
            "definitions": {
                "Outer": {
                    "type": "object",
                    "properties": {"inner": {"$ref": "#/definitions/Inner"}},
                    "required": ["inner"],
                    "additionalProperties": False,
                },
                "Inner": {
                    "type": "object",
                    "properties": {"v": {"type": "string"}},
                    "required": ["v"],
                    "additionalProperties": False,
                },
            },
        },
    ),
    # Anthropic's transform cannot take a list of types (it fails an assertion); the API
    # documents type lists, so the schema goes as it is, closed.
    "type-list": (
        SDK,
        {
            "type": "object",
            "properties": {"v": {"type": ["string", "null"]}},
            "required": ["v"],
            "additionalProperties": False,
        },
    ),
    "json-object": (JSON_MODE, JSON_MODE),
    "const": (SDK, SDK),
    "untyped-property": (Refused("type"), Refused("type")),
}

CONTRACTS: dict[str, type[BaseModel] | dict[str, Any]] = {
    **{m.model_json_schema().get("title", n): m for n, m in MODELS.items()},
    **SCHEMAS,
}


def test_the_table_covers_every_contract() -> None:
    assert set(EXPECTED) == set(CONTRACTS)
    assert len(CONTRACTS) >= 40


def _plan(contract: type[BaseModel] | dict[str, Any], caps: Capabilities) -> WirePlan:
    found = (
        Contract.from_model(contract)
        if isinstance(contract, type)
        else Contract.from_schema(contract)
    )
    schema, strict = found.enforcement_schema()
    return wire_plan(schema, strict, caps)


def openai_sdk(contract: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(contract, type):
        return to_strict_json_schema(contract)
    schema = copy.deepcopy(contract)
    return _ensure_strict_json_schema(schema, path=(), root=schema)


def anthropic_sdk(contract: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    return transform_schema(contract)


def _check(
    name: str,
    caps: Capabilities,
    expectation: Expectation,
    sdk: Callable[[Any], dict[str, Any]],
    unsupported: frozenset[str],
) -> None:
    contract = CONTRACTS[name]
    plan = _plan(contract, caps)
    if isinstance(expectation, Refused):
        assert expectation.keyword in {p.keyword for p in plan.problems}, plan.problems
        assert not plan.strict
        return
    assert plan.problems == ()
    if expectation == JSON_MODE:
        assert (plan.mode, plan.schema, plan.strict) == ("json_object", {"type": "object"}, False)
        return
    if expectation == SDK:
        expected = sdk(contract)
    elif isinstance(expectation, dict):
        expected = expectation
    else:
        assert callable(expectation)
        expected = expectation(sdk(contract))
    assert plan.schema == expected
    assert plan.strict
    assert not _unsupported_uses(plan.schema, unsupported, caps)


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            stack.extend(v for k, v in node.items() if k not in ("enum", "const", "default"))
        elif isinstance(node, list):
            stack.extend(node)


def _unsupported_uses(
    schema: dict[str, Any], unsupported: frozenset[str], caps: Capabilities
) -> list[str]:
    """Every documented-unsupported construct in a schema about to be sent strict."""
    found = [f"{k} at {at}" for k, at in keyword_uses(schema) if k in unsupported]
    for node in _objects(schema):
        if node.get("type") == "object" and node.get("additionalProperties") is not False:
            found.append(f"an open object: {node}")
        props = node.get("properties")
        if caps.engine == "openai" and isinstance(props, dict):
            if set(node.get("required", [])) != set(props):
                found.append(f"an optional property: {node}")
            for name, sub in props.items():
                if isinstance(sub, dict) and sub.get("format") not in (None, *OPENAI_FORMATS):
                    found.append(f"format {sub['format']} at {name}")
        if caps.engine == "anthropic" and isinstance(props, dict):
            for name, sub in props.items():
                if isinstance(sub, dict) and sub.get("minItems") not in (None, 0, 1):
                    found.append(f"minItems {sub['minItems']} at {name}")
    if caps.engine == "openai" and schema.get("type") != "object":
        found.append("a root that is not an object")
    return found


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_openai_gets_what_its_sdk_sends_or_a_refusal(name: str) -> None:
    _check(name, OPENAI, EXPECTED[name][0], openai_sdk, OPENAI_UNSUPPORTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_anthropic_gets_what_its_sdk_sends_or_a_refusal(name: str) -> None:
    _check(name, ANTHROPIC, EXPECTED[name][1], anthropic_sdk, ANTHROPIC_UNSUPPORTED)


MASKBENCH = sorted((Path(__file__).parents[1] / "data" / "schemas" / "maskbench").glob("*.json"))
SLICE = MASKBENCH[::10]  # 30 real-world schemas, spread over the sorted sample


@pytest.mark.parametrize("caps", [OPENAI, ANTHROPIC], ids=["openai", "anthropic"])
def test_real_world_schemas_are_sent_clean_or_refused_by_name(caps: Capabilities) -> None:
    unsupported = OPENAI_UNSUPPORTED if caps.engine == "openai" else ANTHROPIC_UNSUPPORTED
    sent = refused = 0
    for path in SLICE:
        schema = json.loads(path.read_text(encoding="utf-8"))["schema"]
        try:
            plan = _plan(schema, caps)
        except SchemaError:  # a schema the validator refuses never reaches a profile
            continue
        if plan.problems:
            refused += 1
            for problem in plan.problems:
                assert problem.keyword, (path.name, problem)
                assert problem.reason, (path.name, problem)
            assert not plan.strict
        elif plan.mode == "json_schema":
            sent += 1
            assert plan.strict, path.name
            assert not _unsupported_uses(plan.schema, unsupported, caps), path.name
    assert len(SLICE) == 30
    assert sent >= 5, sent
    assert refused >= 1, refused
