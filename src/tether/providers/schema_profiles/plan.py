"""The plan for one contract schema on one server: what is sent, and what that enforces."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from tether.providers.base import Capabilities
from tether.providers.schema_profiles.profile import SchemaProfile, WirePlan
from tether.providers.schema_profiles.strict import rewrite
from tether.providers.schema_profiles.vendors import DEFAULT_ENGINE, ENGINE_BY_HOST, PROFILES

# Keywords that say nothing about a value: a schema with only these and `type: object` asks
# for any object, which JSON mode gives without a schema.
_NOTES = frozenset({"type", "title", "description", "$schema", "$id", "$comment", "examples"})
JSON_OBJECT = {"type": "object"}


def default_engine(base_url: str) -> str:
    """The engine an OpenAI-compatible URL is taken for when its settings name none."""
    return ENGINE_BY_HOST.get(urlsplit(base_url).hostname or "", DEFAULT_ENGINE)


def profile_for(capabilities: Capabilities) -> SchemaProfile | None:
    """The profile the capabilities name; None: the provider's own rules apply."""
    return PROFILES.get(capabilities.engine) if capabilities.engine else None


def any_object(schema: Mapping[str, Any]) -> bool:
    """Whether `schema` admits every JSON object and nothing else (JSON mode's promise)."""
    return schema.get("type") == "object" and schema.keys() <= _NOTES


def wire_plan(schema: Mapping[str, Any], strict: bool, capabilities: Capabilities) -> WirePlan:
    """What a request carries for the contract's enforcement `schema` (`strict`: whether it
    is strict-shaped as it stands), per the capabilities' profile."""
    profile = profile_for(capabilities)
    if profile is None:
        raise ValueError(f"no schema profile for engine {capabilities.engine!r}")
    return _plan(
        json.dumps(schema, sort_keys=False),
        strict,
        profile.name,
        capabilities.supports_json_schema,
        capabilities.schema_in_json_object,
    )


@functools.lru_cache(maxsize=256)
def _plan(
    schema_json: str, strict: bool, name: str, json_schema: bool, schema_in_json_object: bool
) -> WirePlan:
    schema: dict[str, Any] = json.loads(schema_json)
    profile = PROFILES[name]
    if profile.carrier == "response_format" and not json_schema:
        # JSON mode: only the syntax is enforced, unless the server reads a schema beside it.
        decoded = profile.decoded if schema_in_json_object else frozenset()
        return WirePlan(name, "json_object", schema, False, decoded)
    if any_object(schema):
        return WirePlan(name, "json_object", dict(JSON_OBJECT), False, frozenset())
    if profile.strict is None:
        enforced = strict or not profile.needs_strict
        return WirePlan(
            name, "json_schema", schema, strict, profile.decoded if enforced else frozenset()
        )
    done = rewrite(schema, profile.strict)
    return WirePlan(
        name,
        "json_schema",
        done.schema,
        strict=not done.problems,
        decoded=profile.decoded,
        moved=tuple(done.moved),
        problems=tuple(done.problems),
        wrapped=done.wrapped,
        nullable=done.nullable,
    )
