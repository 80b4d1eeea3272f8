"""Walk a JSON Schema and list the keywords it uses, with where each one stands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.contracts.validator import pointer

# Keywords whose value is a map of name -> subschema.
_SCHEMA_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
# Keywords whose value is a subschema or a list of subschemas.
_SCHEMA_VALUES = frozenset(
    {
        "items",
        "additionalItems",
        "prefixItems",
        "additionalProperties",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
        "anyOf",
        "oneOf",
        "allOf",
    }
)
# Keywords that never constrain a value: nothing to enforce.
ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "id",
        "$comment",
        "$anchor",
        "$vocabulary",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
    }
)


def keyword_uses(schema: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str]]:
    """Yield (keyword, JSON pointer of the schema object using it) for every constraint."""
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key not in ANNOTATIONS:
            yield key, pointer(path)
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            for name, sub in value.items():
                yield from keyword_uses(sub, (*path, key, name))
        elif key in _SCHEMA_VALUES:
            if isinstance(value, list):
                for index, sub in enumerate(value):
                    yield from keyword_uses(sub, (*path, key, index))
            else:
                yield from keyword_uses(value, (*path, key))
