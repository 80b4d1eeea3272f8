"""Walk a JSON Schema and list the keywords it uses, with where each one stands."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tether.contracts.guard import pointer

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
        # OpenAPI's hint naming the tag property of a oneOf (Pydantic emits it); validators
        # ignore it, the branches' own const tags do the work.
        "discriminator",
    }
)


def keyword_uses(schema: Any) -> Iterator[tuple[str, str]]:
    """Yield (keyword, JSON pointer of the schema object using it) for every constraint, in
    document order (iterative: no recursion limit)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, dict):
            continue
        children: list[tuple[Any, tuple[str | int, ...]]] = []
        for key, value in node.items():
            if key not in ANNOTATIONS:
                yield key, pointer(path)
            if key in _SCHEMA_MAPS and isinstance(value, dict):
                children += [(sub, (*path, key, name)) for name, sub in value.items()]
            elif key in _SCHEMA_VALUES:
                if isinstance(value, list):
                    children += [(sub, (*path, key, i)) for i, sub in enumerate(value)]
                else:
                    children.append((value, (*path, key)))
        stack.extend(reversed(children))
