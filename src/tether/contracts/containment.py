"""Schema containment: does every value one JSON Schema allows also meet another?

`contained(inner, outer)` answers "contained" or "not contained, because ...", with a JSON
Pointer into `inner` and a sentence for each reason. The semantic-versioning rules are built on
it (an output contract may only narrow, an inputs schema may only widen). jsonschema-rs can
decide containment too, but answers yes, no or unknown without saying where; here each keyword
is compared on its own so that a person can read why, and jsonschema-rs is asked only when
this comparison cannot decide.

Compared: type (integer within number), enum, const, minimum/maximum/exclusive*, multipleOf,
minLength/maxLength, pattern (equal patterns only), format, required, properties,
additionalProperties, patternProperties (equal only), min/maxProperties, items, prefixItems,
additionalItems, min/maxItems, uniqueItems, local $ref (with $defs/definitions), allOf, anyOf,
oneOf. Any other keyword must be equal on both sides, or the answer is "not provably
contained". A schema that allows only a few values (enum, const, boolean, null) is decided
exactly, by validating each value against the other schema.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import jsonschema_rs

from tether.contracts.guard import MAX_SCHEMA_DEPTH, pointer
from tether.contracts.keywords import ANNOTATIONS
from tether.contracts.reasons import (
    Path,
    Reason,
    count_reasons,
    not_compared,
    numeric_reasons,
    shown_values,
    string_reasons,
    unproven,
)

__all__ = ["Containment", "Reason", "contained"]

# Comparisons nest through properties, items and references: bounded, with room for refs.
_MAX_NESTING = 2 * MAX_SCHEMA_DEPTH
_MAX_STEPS = 20_000
_TYPES = ("null", "boolean", "object", "array", "number", "integer", "string")
_COMBINATORS = ("allOf", "anyOf", "oneOf")
_LEGACY_DRAFTS = ("draft-04", "draft-06", "draft-07")
_NUMERIC = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
_STRING = {"minLength", "maxLength", "pattern", "format"}
_ARRAY = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"}
_OBJECT = {
    "required",
    "properties",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
}
_COMPARED = {"type", "enum", "const", "$ref", *_COMBINATORS, *_NUMERIC, *_STRING, *_ARRAY,
             *_OBJECT}  # fmt: skip


@dataclass(frozen=True)
class Containment:
    reasons: tuple[Reason, ...]

    @property
    def holds(self) -> bool:
        return not self.reasons


def contained(inner: Any, outer: Any) -> Containment:
    """Whether every value `inner` allows is allowed by `outer` (both JSON Schemas)."""
    reasons = _Comparison(inner, outer).check(inner, (), outer, (), 0)
    if reasons and not any(r.proven for r in reasons) and _covers(outer, inner):
        return Containment(())
    return Containment(tuple(dict.fromkeys(reasons)))


def _covers(outer: Any, inner: Any) -> bool:
    """jsonschema-rs's own decision, offline; only a proven yes counts."""
    try:
        found = jsonschema_rs.canonicalize(outer, offline=True, validate_formats=True).covers(
            jsonschema_rs.canonicalize(inner, offline=True, validate_formats=True)
        )
    except (ValueError, jsonschema_rs.ReferencingError):  # incl. CanonicalizationError
        return False
    return bool(found == jsonschema_rs.canonical.Containment.YES)


@dataclass
class _Side:
    """One schema document: its root, and how its references resolve."""

    root: Any
    legacy_refs: bool = field(init=False)  # drafts 4-7 ignore keywords beside $ref

    def __post_init__(self) -> None:
        meta = self.root.get("$schema", "") if isinstance(self.root, Mapping) else ""
        self.legacy_refs = isinstance(meta, str) and any(d in meta for d in _LEGACY_DRAFTS)

    def resolve(self, ref: str) -> tuple[Any, Path] | None:
        if not ref.startswith("#/") and ref != "#":
            return None  # an anchor or a meta-schema: not followed
        node = self.root
        path: list[str | int] = []
        step: str | int
        for raw in ref[2:].split("/") if ref != "#" else []:
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node, step = node[part], part
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node, step = node[int(part)], int(part)
            else:
                return None
            path.append(step)
        return node, tuple(path)

    def follow(self, node: Any) -> Any:
        """The target of a lone local $ref (once), or the node itself."""
        if isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and len(node) == 1:
            found = self.resolve(node["$ref"])
            if found is not None:
                return found[0]
        return node

    @functools.cached_property
    def _registry(self) -> jsonschema_rs.Registry:
        return jsonschema_rs.Registry([("urn:tether:schema", self.root)])

    def admits(self, path: Path, value: Any) -> bool | None:
        """Whether the subschema at `path` allows `value`; None if it cannot be compiled."""
        fragment = quote(pointer(path), safe="/~!$&'()*+,;=:@")
        try:
            validator = jsonschema_rs.validator_for(
                {"$ref": f"urn:tether:schema#{fragment}"},
                registry=self._registry,
                offline=True,
                validate_formats=True,
            )
        except (ValueError, jsonschema_rs.ReferencingError):
            return None
        return bool(validator.is_valid(value))


class _Comparison:
    def __init__(self, inner: Any, outer: Any) -> None:
        self.inner = _Side(inner)
        self.outer = _Side(outer)
        self.steps = 0
        self.assumed: set[tuple[int, int]] = set()  # pairs under comparison (recursive refs)

    def check(self, i: Any, ip: Path, o: Any, op: Path, depth: int) -> list[Reason]:
        self.steps += 1
        if depth > _MAX_NESTING or self.steps > _MAX_STEPS:
            return [not_compared(ip, "schema", "nests too deeply to compare")]
        i, ip, i_parts = self._conjuncts(self.inner, i, ip)
        o, op, o_parts = self._conjuncts(self.outer, o, op)
        if (i is False or _trivial(o)) and not o_parts:
            return []
        key = (id(i), id(o))
        if key in self.assumed:
            return []  # a recursive schema against itself: holds unless shown otherwise
        self.assumed.add(key)
        try:
            return self._compare(i, ip, i_parts, o, op, o_parts, depth + 1)
        finally:
            self.assumed.discard(key)

    def _compare(
        self,
        i: Any,
        ip: Path,
        i_parts: list[tuple[Any, Path]],
        o: Any,
        op: Path,
        o_parts: list[tuple[Any, Path]],
        depth: int,
    ) -> list[Reason]:
        # An outer conjunction: inner must meet each part.
        if o_parts:
            reasons = self.check(i, ip, o, op, depth) if _constraints(o) else []
            for part, path in o_parts:
                reasons += self.check(i, ip, part, path, depth)
            return reasons
        # An inner conjunction: meeting the outer schema through any one part is enough.
        if i_parts:
            tries = [self.check(i, ip, o, op, depth)]
            for part, path in i_parts:
                if tries[-1]:
                    tries.append(self.check(part, path, o, op, depth))
            return [] if any(not t for t in tries) else [unproven(r) for r in min(tries, key=len)]
        if o is False:
            return [] if i is False else [Reason(pointer(ip), "false", "allows values", "none")]
        i = {} if i is True else i
        if not isinstance(i, Mapping) or not isinstance(o, Mapping):
            return [not_compared(ip, "schema", "is not a JSON Schema object")]
        if i == o and self._same_targets(i):
            return []
        finite = _finiteshown_values(i)
        if finite is not None:
            return self._finite(finite, i, ip, o, op)
        for keyword in ("anyOf", "oneOf"):
            if isinstance(i.get(keyword), list):
                return self._inner_branches(keyword, i, ip, o, op, depth)
        for keyword in ("anyOf", "oneOf"):
            if isinstance(o.get(keyword), list):
                return self._outer_branches(keyword, i, ip, o, op, depth)
        return self._keywords(i, ip, o, op, depth)

    # -- references and conjunctions ----------------------------------------------------------

    def _same_targets(self, node: Any) -> bool:
        """Whether every reference reachable from `node` names equal schemas on both sides."""
        seen: set[str] = set()
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(item)
            if not isinstance(item, Mapping):
                continue
            stack.extend(item.values())
            for keyword in ("$ref", "$dynamicRef", "$recursiveRef"):
                ref = item.get(keyword)
                if not isinstance(ref, str) or ref in seen:
                    continue
                seen.add(ref)
                mine, theirs = self.inner.resolve(ref), self.outer.resolve(ref)
                if mine is None or theirs is None or mine[0] != theirs[0]:
                    return False
                stack.append(mine[0])
        return True

    def _conjuncts(
        self, side: _Side, node: Any, path: Path
    ) -> tuple[Any, Path, list[tuple[Any, Path]]]:
        """Follow a lone $ref; split `$ref` beside other keywords, and allOf, into parts."""
        for _ in range(_MAX_NESTING):
            if not isinstance(node, Mapping):
                return node, path, []
            ref = node.get("$ref")
            if not isinstance(ref, str):
                break
            target = side.resolve(ref)
            if target is None:
                return node, path, []  # compared as an unknown keyword
            rest = {k: v for k, v in node.items() if k != "$ref"}
            if side.legacy_refs or not _constraints(rest):
                node, path = target
                continue
            return rest, path, [target]
        parts = node.get("allOf") if isinstance(node, Mapping) else None
        if isinstance(parts, list):
            rest = {k: v for k, v in node.items() if k != "allOf"}
            return rest, path, [(p, (*path, "allOf", n)) for n, p in enumerate(parts)]
        return node, path, []

    # -- few values: decided exactly ----------------------------------------------------------

    def _finite(
        self, values: list[Any], i: Mapping[str, Any], ip: Path, o: Mapping[str, Any], op: Path
    ) -> list[Reason]:
        refused = []
        for value in values:
            if self.inner.admits(ip, value) is False:
                continue  # inner's other keywords refuse it anyway
            if self.outer.admits(op, value) is not True:
                refused.append(value)
        if not refused:
            return []
        keyword = "const" if "const" in i else "enum" if "enum" in i else "type"
        return [Reason(pointer(ip), keyword, f"allows {shown_values(refused)}", "does not")]

    # -- anyOf / oneOf ------------------------------------------------------------------------

    def _inner_branches(
        self, keyword: str, i: Mapping[str, Any], ip: Path, o: Any, op: Path, depth: int
    ) -> list[Reason]:
        """A union is contained when each branch is (with the keywords beside it)."""
        siblings = {k: v for k, v in i.items() if k != keyword}
        reasons: list[Reason] = []
        for n, branch in enumerate(i[keyword]):
            merged = _merged(siblings, branch)
            path = (*ip, keyword, n)
            reasons += self.check(merged if merged is not None else branch, path, o, op, depth)
        return reasons

    def _outer_branches(
        self, keyword: str, i: Mapping[str, Any], ip: Path, o: Mapping[str, Any], op: Path,
        depth: int,
    ) -> list[Reason]:  # fmt: skip
        siblings = {k: v for k, v in o.items() if k != keyword}
        reasons = self.check(i, ip, siblings, op, depth) if _constraints(siblings) else []
        branches: list[Any] = o[keyword]
        tries = [
            self.check(i, ip, branch, (*op, keyword, n), depth) for n, branch in enumerate(branches)
        ]
        fits = [n for n, found in enumerate(tries) if not found]
        chosen = fits[0] if fits else -1
        if (
            keyword == "oneOf"
            and fits
            and not all(
                _disjoint(self.outer, branches[chosen], b)
                for n, b in enumerate(branches)
                if n != chosen
            )
        ):
            return [*reasons, not_compared(ip, keyword, "branches that may overlap")]
        if fits:
            return reasons
        if len(tries) == 1:
            return reasons + tries[0]
        closest = min(tries, key=len) if tries else []
        note = Reason(pointer(ip), keyword, "allows values outside every branch", "does not")
        return [*reasons, unproven(note), *map(unproven, closest)]

    # -- keyword by keyword -------------------------------------------------------------------

    def _keywords(
        self, i: Mapping[str, Any], ip: Path, o: Mapping[str, Any], op: Path, depth: int
    ) -> list[Reason]:
        at = pointer(ip)
        reasons: list[Reason] = []
        inner_types = _types(i)
        outer_types = _types(o)
        kept = {t for t in inner_types if _type_allowed(t, outer_types)}
        lost = sorted(inner_types - kept, key=_TYPES.index)
        if "number" in lost and "integer" in lost:
            lost.remove("integer")  # within number
        if lost:
            allowed = ", ".join(sorted(outer_types, key=_TYPES.index))
            reasons.append(Reason(at, "type", f"allows {', '.join(lost)}", f"only {allowed}"))
        if "enum" in o or "const" in o:
            shown = shown_values(o["enum"] if "enum" in o else [o["const"]])
            keyword = "enum" if "enum" in o else "const"
            reasons.append(Reason(at, keyword, "allows any value", f"only {shown}"))
        if kept & {"number", "integer"}:
            reasons += numeric_reasons(i, at, o, kept)
        if "string" in kept:
            reasons += string_reasons(i, at, o)
        if "array" in kept:
            reasons += self._array(i, ip, o, op, depth)
        if "object" in kept:
            reasons += self._object(i, ip, o, op, depth)
        if "$ref" in o:
            reasons.append(not_compared(ip, "$ref", f"does not have the reference {o['$ref']!r}"))
        for keyword in sorted(_constraints(o).keys() - _COMPARED):
            if i.get(keyword) != o[keyword]:
                reasons.append(not_compared(ip, keyword, f"has no equal {keyword!r}"))
        return reasons

    def _array(
        self, i: Mapping[str, Any], ip: Path, o: Mapping[str, Any], op: Path, depth: int
    ) -> list[Reason]:
        at = pointer(ip)
        reasons = count_reasons(i, at, o, "minItems", "maxItems", "items")
        at_most_one = isinstance(i.get("maxItems"), int) and i["maxItems"] <= 1
        if o.get("uniqueItems") is True and i.get("uniqueItems") is not True and not at_most_one:
            reasons.append(Reason(at, "uniqueItems", "allows repeated items", "does not"))
        i_prefix, i_rest = _array_parts(self.inner, i, ip)
        o_prefix, o_rest = _array_parts(self.outer, o, op)
        longest = i["maxItems"] if isinstance(i.get("maxItems"), int) else None
        for n in range(max(len(i_prefix), len(o_prefix))):
            if longest is not None and n >= longest:
                break
            inner_item = i_prefix[n] if n < len(i_prefix) else i_rest
            outer_item = o_prefix[n] if n < len(o_prefix) else o_rest
            reasons += self.check(*inner_item, *outer_item, depth)
        if longest is None or longest > max(len(i_prefix), len(o_prefix)):
            reasons += self.check(*i_rest, *o_rest, depth)
        return reasons

    def _object(
        self, i: Mapping[str, Any], ip: Path, o: Mapping[str, Any], op: Path, depth: int
    ) -> list[Reason]:
        at = pointer(ip)
        reasons = count_reasons(i, at, o, "minProperties", "maxProperties", "properties")
        inner_required = _names(i.get("required"))
        for name in _names(o.get("required")):
            if name not in inner_required:
                reasons.append(Reason(at, "required", f"does not require {name!r}", "does"))
        patterns = i.get("patternProperties"), o.get("patternProperties")
        if patterns[0] != patterns[1]:
            reasons.append(not_compared(ip, "patternProperties", "has other patternProperties"))
        i_props = _properties(i)
        o_props = _properties(o)
        i_extra = (i.get("additionalProperties", True), (*ip, "additionalProperties"))
        o_extra = (o.get("additionalProperties", True), (*op, "additionalProperties"))
        for name in [*i_props, *(n for n in o_props if n not in i_props)]:
            if _matches_any(name, patterns[0]) or _matches_any(name, patterns[1]):
                if i_props.get(name) != o_props.get(name):
                    reasons.append(not_compared(ip, "properties", f"describes {name!r} otherwise"))
                continue
            where = (*ip, "properties", name)
            if name in i_props and name not in o_props and o_extra[0] is False:
                reasons.append(
                    Reason(
                        pointer(where),
                        "additionalProperties",
                        f"allows a field {name!r}",
                        "allows no extra fields",
                    )
                )
                continue
            if name in o_props and name not in i_props and i_extra[0] is True:
                if not _trivial(o_props[name]):
                    reasons.append(
                        Reason(
                            pointer(where),
                            "properties",
                            f"does not describe {name!r} (any value allowed)",
                            "constrains it",
                        )
                    )
                continue
            inner_field = (i_props[name], where) if name in i_props else i_extra
            outer_field = (o_props[name], (*op, "properties", name)) if name in o_props else o_extra
            reasons += self.check(*inner_field, *outer_field, depth)
        if o_extra[0] is False and i_extra[0] is not False:
            reasons.append(Reason(at, "additionalProperties", "allows extra fields", "does not"))
        else:
            reasons += self.check(*i_extra, *o_extra, depth)
        return reasons


# -- helpers on one schema object ---------------------------------------------------------------


def _constraints(node: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in ANNOTATIONS}


def _trivial(schema: Any) -> bool:
    """A schema that allows every value."""
    return schema is True or (isinstance(schema, Mapping) and not _constraints(schema))


def _types(node: Mapping[str, Any]) -> set[str]:
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    return set(_TYPES)


def _type_allowed(kind: str, allowed: set[str]) -> bool:
    return kind in allowed or (kind == "integer" and "number" in allowed)


def _finiteshown_values(node: Mapping[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if isinstance(node.get("enum"), list):
        return list(node["enum"])
    types = _types(node)
    if types <= {"boolean", "null"}:
        return [v for t, v in (("boolean", True), ("boolean", False), ("null", None)) if t in types]
    return None


def _merged(base: Mapping[str, Any], extra: Any) -> dict[str, Any] | None:
    """Both schemas as one, when they share no keyword (else None)."""
    if not isinstance(extra, Mapping) or _constraints(base).keys() & _constraints(extra).keys():
        return None
    return {**base, **extra}


def _compatible_types(a: set[str], b: set[str]) -> bool:
    return any(x == y or {x, y} == {"integer", "number"} for x in a for y in b)


def _disjoint(side: _Side, a: Any, b: Any) -> bool:
    """Whether no value meets both schemas (simple cases: types, values, a tagged field)."""
    a, b = side.follow(a), side.follow(b)
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return False
    if not _compatible_types(_types(a), _types(b)):
        return True
    va, vb = _finiteshown_values(a), _finiteshown_values(b)
    if va is not None and vb is not None:
        return not any(x == y for x in va for y in vb)
    props_a, props_b = _properties(a), _properties(b)
    tagged = _names(a.get("required")) & _names(b.get("required")) & props_a.keys() & props_b.keys()
    return any(_disjoint(side, props_a[n], props_b[n]) for n in tagged)


def _properties(node: Mapping[str, Any]) -> dict[str, Any]:
    found = node.get("properties")
    return dict(found) if isinstance(found, Mapping) else {}


def _names(value: Any) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


def _matches_any(name: str, patterns: Any) -> bool:
    if not isinstance(patterns, Mapping):
        return False
    for pattern in patterns:
        try:
            if re.search(pattern, name):
                return True
        except re.error:
            return True  # cannot tell: treat it as matching
    return False


def _array_parts(
    side: _Side, node: Mapping[str, Any], path: Path
) -> tuple[list[tuple[Any, Path]], tuple[Any, Path]]:
    """Schemas of the leading positions, and of every position after them."""
    items = node.get("items", True)
    if isinstance(items, list):  # drafts 4-2019-09: `items` as a list, then additionalItems
        prefix = [(s, (*path, "items", n)) for n, s in enumerate(items)]
        return prefix, (node.get("additionalItems", True), (*path, "additionalItems"))
    listed = node.get("prefixItems")
    prefix = (
        [(s, (*path, "prefixItems", n)) for n, s in enumerate(listed)]
        if isinstance(listed, list)
        else []
    )
    return prefix, (items, (*path, "items"))
