"""Local `$ref` resolution and the questions profiles ask of a schema: can this subschema be
null, do these oneOf branches overlap, does this schema refer to itself."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

_PRIMITIVE = (str, int, float, bool, type(None))
# How many `$ref` hops a question follows before it gives the cautious answer.
_MAX_HOPS = 32


def resolve(root: Mapping[str, Any], ref: str) -> Any:
    """The subschema a local `#/...` reference names, or None."""
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def deref(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow a chain of bare references; None when it breaks or loops."""
    for _ in range(_MAX_HOPS):
        if not (isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str)):
            return schema
        schema = resolve(root, schema["$ref"])
    return None


def accepts_null(schema: Any, root: Mapping[str, Any], hops: int = 0) -> bool:
    """Whether `null` can be valid here; True when unsure (the cautious answer for callers
    that drop a null only when the schema cannot accept it)."""
    if schema is False:
        return False
    if not isinstance(schema, Mapping) or hops > _MAX_HOPS:
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str) and not accepts_null(resolve(root, ref), root, hops + 1):
        return False
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "null":
        return False
    if isinstance(kind, list) and "null" not in kind:
        return False
    if "const" in schema and schema["const"] is not None:
        return False
    enum = schema.get("enum")
    if isinstance(enum, list) and None not in enum:
        return False
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and not any(
            accepts_null(b, root, hops + 1) for b in branches
        ):
            return False
    branches = schema.get("allOf")
    return not isinstance(branches, list) or all(accepts_null(b, root, hops + 1) for b in branches)


def is_primitive(value: Any) -> bool:
    return isinstance(value, _PRIMITIVE)


def _types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    kind = schema.get("type")
    if isinstance(kind, str):
        kinds = {kind}
    elif isinstance(kind, list):
        kinds = {k for k in kind if isinstance(k, str)}
    else:
        return None
    if "integer" in kinds:  # every integer is also a number
        kinds.add("number")
    return frozenset(kinds)


def _literals(schema: Any) -> frozenset[str] | None:
    if not isinstance(schema, Mapping):
        return None
    if "const" in schema:
        return frozenset({json.dumps(schema["const"], sort_keys=True)})
    enum = schema.get("enum")
    if isinstance(enum, list):
        return frozenset(json.dumps(v, sort_keys=True) for v in enum)
    return None


def _tags(schema: Mapping[str, Any], root: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Required properties whose value is one of a known finite set (a discriminator)."""
    props = schema.get("properties")
    required = schema.get("required")
    if not isinstance(props, Mapping) or not isinstance(required, list):
        return {}
    found = {}
    for name in required:
        if isinstance(name, str) and name in props:
            values = _literals(deref(props[name], root))
            if values is not None:
                found[name] = values
    return found


def _apart(a: Mapping[str, Any], b: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    types_a, types_b = _types(a), _types(b)
    if types_a is not None and types_b is not None and not types_a & types_b:
        return True
    values_a, values_b = _literals(a), _literals(b)
    if values_a is not None and values_b is not None and not values_a & values_b:
        return True
    tags_a, tags_b = _tags(a, root), _tags(b, root)
    return any(not tags_a[name] & tags_b[name] for name in tags_a.keys() & tags_b.keys())


def disjoint(branches: list[Any], root: Mapping[str, Any]) -> bool:
    """Whether no value can match two of `branches` (so oneOf means the same as anyOf):
    different types, different literals, or a required discriminator property whose values
    differ (Pydantic's discriminated unions)."""
    resolved = [deref(b, root) for b in branches]
    if not all(isinstance(b, Mapping) for b in resolved):
        return False
    return all(
        _apart(resolved[i], resolved[j], root)
        for i in range(len(resolved))
        for j in range(i + 1, len(resolved))
    )


def references(schema: Any) -> Iterator[tuple[str, tuple[str | int, ...]]]:
    """Every `$ref` value with the path of the schema object holding it."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str):
                yield ref, path
            stack.extend(
                (v, (*path, k)) for k, v in node.items() if k not in ("enum", "const", "default")
            )
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))


def recursive_ref(root: Mapping[str, Any]) -> tuple[str, tuple[str | int, ...]] | None:
    """A reference that leads back to a schema containing it, if any."""
    for ref, path in references(root):
        if ref == "#" or _reaches(root, ref):
            return ref, path
    return None


def _reaches(root: Mapping[str, Any], ref: str) -> bool:
    """Whether following references from the target of `ref` comes back to it."""
    seen: set[str] = set()
    todo = [ref]
    while todo:
        current = todo.pop()
        target = resolve(root, current)
        for inner, _ in references(target):
            if inner == ref or inner == "#":
                return True
            if inner not in seen:
                seen.add(inner)
                todo.append(inner)
    return False
