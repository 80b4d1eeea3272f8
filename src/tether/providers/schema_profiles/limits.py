"""The documented size limits of a strict mode, checked on the schema about to be sent."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tether.contracts.guard import pointer
from tether.errors import SchemaProblem
from tether.providers.schema_profiles.profile import Limits
from tether.providers.schema_profiles.refs import resolve

Path = tuple[str | int, ...]
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")


@dataclass
class _Count:
    properties: int = 0
    depth: int = 0
    enum_values: int = 0
    chars: int = 0
    optional: int = 0
    unions: int = 0


def _nodes(schema: Any) -> Iterator[tuple[Mapping[str, Any], Path]]:
    """Every schema object with its path (iterative)."""
    stack: list[tuple[Any, Path]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if not isinstance(node, Mapping):
            continue
        yield node, path
        for key in _SUBSCHEMA_MAPS:
            subs = node.get(key)
            if isinstance(subs, Mapping):
                stack.extend((s, (*path, key, n)) for n, s in subs.items())
        for key in _SUBSCHEMA_LISTS:
            subs = node.get(key)
            if isinstance(subs, list):
                stack.extend((s, (*path, key, i)) for i, s in enumerate(subs))
        if isinstance(node.get("items"), Mapping):
            stack.append((node["items"], (*path, "items")))


class _Depth:
    """Levels of nested objects, references followed (a cycle is not followed again: a
    recursive schema is as deep as one pass through it). Stops counting past `most`."""

    def __init__(self, root: Mapping[str, Any], most: int) -> None:
        self.root = root
        self.most = most
        self.open: set[str] = set()

    def of(self, node: Any, above: int) -> int:
        if not isinstance(node, Mapping) or above > self.most:
            return above
        here = above + (1 if "properties" in node else 0)
        deepest = here
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in self.open:
            self.open.add(ref)
            deepest = max(deepest, self.of(resolve(self.root, ref), here))
            self.open.discard(ref)
        for key in ("properties",):
            subs = node.get(key)
            if isinstance(subs, Mapping):
                deepest = max([deepest, *(self.of(s, here) for s in subs.values())])
        for key in _SUBSCHEMA_LISTS:
            subs = node.get(key)
            if isinstance(subs, list):
                deepest = max([deepest, *(self.of(s, here) for s in subs)])
        if isinstance(node.get("items"), Mapping):
            deepest = max(deepest, self.of(node["items"], here))
        return deepest


def _is_union(schema: Any) -> bool:
    return isinstance(schema, Mapping) and (
        "anyOf" in schema or isinstance(schema.get("type"), list)
    )


def _measure(schema: Mapping[str, Any], limits: Limits) -> tuple[_Count, list[SchemaProblem]]:
    count = _Count()
    problems: list[SchemaProblem] = []
    for node, path in _nodes(schema):
        props = node.get("properties")
        if isinstance(props, Mapping):
            count.properties += len(props)
            count.chars += sum(len(name) for name in props)
            required = node.get("required")
            needed = set(required) if isinstance(required, list) else set()
            count.optional += sum(1 for name in props if name not in needed)
            count.unions += sum(1 for sub in props.values() if _is_union(sub))
        for key in ("$defs", "definitions"):
            if isinstance(node.get(key), Mapping):
                count.chars += sum(len(name) for name in node[key])
        enum = node.get("enum")
        if isinstance(enum, list):
            count.enum_values += len(enum)
            strings = sum(len(v) for v in enum if isinstance(v, str))
            count.chars += strings
            if (
                limits.large_enum is not None
                and limits.large_enum_chars is not None
                and len(enum) > limits.large_enum
                and strings > limits.large_enum_chars
            ):
                problems.append(
                    SchemaProblem(
                        "enum",
                        pointer(path),
                        f"an enum of more than {limits.large_enum} values may total at most "
                        f"{limits.large_enum_chars} characters here; this one has {strings}",
                    )
                )
        if isinstance(node.get("const"), str):
            count.chars += len(node["const"])
    return count, problems


def limit_problems(schema: Mapping[str, Any], limits: Limits) -> list[SchemaProblem]:
    count, problems = _measure(schema, limits)
    if limits.max_depth is not None:
        count.depth = _Depth(schema, limits.max_depth).of(schema, 0)
    checks = (
        ("properties", "", count.properties, limits.max_properties, "object properties in total"),
        ("properties", "", count.depth, limits.max_depth, "levels of nested objects"),
        ("enum", "", count.enum_values, limits.max_enum_values, "enum values in total"),
        ("enum", "", count.chars, limits.max_string_chars,
         "characters of property names, definition names, enum and const strings"),
        ("required", "", count.optional, limits.max_optional,
         "optional properties (left out of required) in total"),
        ("anyOf", "", count.unions, limits.max_unions,
         "properties typed by anyOf or a list of types, in total"),
    )  # fmt: skip
    for keyword, at, found, most, what in checks:
        if most is not None and found > most:
            problems.append(
                SchemaProblem(
                    keyword, at, f"strict mode here takes at most {most} {what}; this has {found}"
                )
            )
    return problems
