"""Rewrite a contract schema into a vendor's strict subset, the way the vendor's SDK does.

What the vendor documents as unsupported is either moved into the description (a bound such
as `maxLength`: the model reads it, tether's validator enforces it after) or refused with the
keyword named (a map, overlapping oneOf branches: no rewrite keeps the same meaning). Optional
properties become required and nullable where every property must be required; a root the
vendor does not take is wrapped in {"value": ...}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.contracts.guard import pointer
from tether.errors import SchemaProblem
from tether.providers.schema_profiles.limits import limit_problems
from tether.providers.schema_profiles.profile import StrictRules
from tether.providers.schema_profiles.refs import (
    accepts_null,
    deref,
    disjoint,
    is_primitive,
    recursive_ref,
    references,
    resolve,
)

Path = tuple[str | int, ...]

# Keywords that add properties to an object from beside it: closing the object, as strict
# modes must, would reject them and could leave no valid value.
COMPOSITION = ("anyOf", "oneOf", "allOf", "$ref", "if", "then", "else", "dependentSchemas")
_DEFINITIONS = ("$defs", "definitions")
_MAX_INLINING = 32
WRAPPED_KEY = "value"


@dataclass
class Rewrite:
    schema: dict[str, Any]
    moved: list[tuple[str, str]] = field(default_factory=list)
    problems: list[SchemaProblem] = field(default_factory=list)
    wrapped: bool = False
    nullable: bool = False


def rewrite(schema: Mapping[str, Any], rules: StrictRules) -> Rewrite:
    """`schema` in the strict subset `rules` describe, with what was moved or refused."""
    root = dict(schema)
    walker = _Walker(root, rules)
    if rules.refuse_recursion:
        found = recursive_ref(root)
        if found is not None:
            ref, path = found
            walker.refuse("$ref", path, f"{ref} makes the schema recursive; strict mode here "
                          "takes no recursive schemas")  # fmt: skip
    sent = walker.node(root, ())
    wrapped = False
    if sent.get("type") != "object" or "anyOf" in sent:
        if rules.other_root == "wrap":
            sent, wrapped = _wrap(sent, root, walker), True
        else:
            walker.refuse("type", (), "the root must be an object here; wrap the value in an "
                          "object property")  # fmt: skip
    walker.problems.extend(limit_problems(sent, rules.limits))
    return Rewrite(sent, walker.moved, walker.problems, wrapped, walker.nullable)


def _wrap(sent: dict[str, Any], root: Mapping[str, Any], walker: _Walker) -> dict[str, Any]:
    """{"value": sent} as the root; definitions stay at the root, where references find them."""
    for ref, path in references(root):
        if not ref.startswith(("#/$defs/", "#/definitions/")):
            walker.refuse("$ref", path, f"{ref} points into the root, which is sent wrapped in "
                          "an object here; move the target into $defs")  # fmt: skip
    definitions = {k: sent.pop(k) for k in _DEFINITIONS if k in sent}
    return {
        "type": "object",
        "properties": {WRAPPED_KEY: sent},
        "required": [WRAPPED_KEY],
        "additionalProperties": False,
        **definitions,
    }


class _Walker:
    def __init__(self, root: dict[str, Any], rules: StrictRules) -> None:
        self.root = root
        self.rules = rules
        self.moved: list[tuple[str, str]] = []
        self.problems: list[SchemaProblem] = []
        self.nullable = False

    def refuse(self, keyword: str, path: Path, reason: str) -> None:
        self.problems.append(SchemaProblem(keyword, pointer(path), reason))

    def node(self, node: Any, path: Path, inlined: int = 0) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            self.refuse("type", path, "strict mode needs a schema object here, not true or false")
            return {}
        work = dict(node)
        out: dict[str, Any] = {}
        for key in _DEFINITIONS:
            defs = work.pop(key, None)
            if isinstance(defs, Mapping):
                out[key] = {n: self.node(s, (*path, key, n)) for n, s in defs.items()}
        all_of = work.get("allOf")
        if self.rules.refuse_all_of and isinstance(all_of, list) and len(all_of) == 1:
            # One branch is the same as the branch itself (OpenAI's SDK merges it).
            work.pop("allOf")
            work = {**work, **all_of[0]} if isinstance(all_of[0], Mapping) else work
        ref = work.pop("$ref", None)
        if isinstance(ref, str):
            return {**out, **self._ref(ref, work, path, inlined, beside_defs=bool(out))}
        self._composition(work, out, path)
        literal = self._literals(work, out)
        kind = work.pop("type", None)
        if kind is not None and not (literal and self.rules.literals_drop_type):
            out["type"] = kind
        if kind is None and not literal and not {"anyOf", "allOf"} & out.keys():
            self.refuse("type", path, "strict mode needs a type, anyOf, enum or const here")
        kinds = set(kind) if isinstance(kind, list) else {kind}
        for key in sorted(self.rules.annotations & work.keys()):
            out[key] = work.pop(key)
        if self.rules.drop_null_default and "default" in out and out["default"] is None:
            del out["default"]
        if "object" in kinds or "properties" in work:
            self._object(node, work, out, path)
        items = work.pop("items", None)
        if isinstance(items, list):
            self.refuse("items", path, "a list of item schemas is a tuple, and strict mode here "
                        "takes no tuples; use an object with named properties")  # fmt: skip
        elif items is not None:
            out["items"] = self.node(items, (*path, "items"))
        self._rest(work, out, path)
        return out

    def _ref(
        self, ref: str, work: dict[str, Any], path: Path, inlined: int, *, beside_defs: bool
    ) -> dict[str, Any]:
        if "properties" in work:
            self.refuse("additionalProperties", path, "properties combined with $ref here: "
                        "closing the object, as strict mode must, would reject the properties "
                        "the other schema adds; merge them into one object")  # fmt: skip
        inline = self.rules.ref_siblings == "inline"
        if not work and not (inline and beside_defs):
            return {"$ref": ref}
        if inline:
            target = resolve(self.root, ref)
            if not isinstance(target, Mapping) or inlined >= _MAX_INLINING:
                self.refuse("$ref", path, f"{ref} has sibling keywords and cannot be inlined")
                return {"$ref": ref}
            # Sibling keywords win over the target's, as in OpenAI's SDK.
            return self.node({**target, **work}, path, inlined + 1)
        # Anthropic's SDK sends a reference alone; what stood beside it is validated after.
        self.moved.extend((k, pointer(path)) for k in work if k not in self.rules.annotations)
        return {"$ref": ref}

    def _composition(self, work: dict[str, Any], out: dict[str, Any], path: Path) -> None:
        one_of = work.pop("oneOf", None)
        any_of = work.pop("anyOf", None)
        if isinstance(one_of, list):
            if any_of is not None or not disjoint(one_of, self.root):
                self.refuse("oneOf", path, "its branches can overlap, and strict mode has only "
                            "anyOf; tag each branch with a const property (a discriminator) or "
                            "use anyOf")  # fmt: skip
            else:
                out["anyOf"] = [self.node(b, (*path, "oneOf", i)) for i, b in enumerate(one_of)]
        if isinstance(any_of, list):
            out["anyOf"] = [self.node(b, (*path, "anyOf", i)) for i, b in enumerate(any_of)]
        all_of = work.pop("allOf", None)
        if isinstance(all_of, list):
            if self.rules.refuse_all_of:
                self.refuse("allOf", path, "strict mode here takes no allOf; merge the branches "
                            "into one object")  # fmt: skip
            elif sum(_has_properties(b, self.root) for b in all_of) > 1:
                self.refuse("allOf", path, "strict mode closes every branch, and a closed "
                            "branch rejects the properties of the others; merge the branches "
                            "into one object")  # fmt: skip
            else:
                out["allOf"] = [self.node(b, (*path, "allOf", i)) for i, b in enumerate(all_of)]

    def _literals(self, work: dict[str, Any], out: dict[str, Any]) -> bool:
        enum = work.get("enum")
        if isinstance(enum, list) and enum and all(is_primitive(v) for v in enum):
            out["enum"] = list(work.pop("enum"))
        if "const" in work and is_primitive(work["const"]):
            out["const"] = work.pop("const")
        return "enum" in out or "const" in out

    def _object(
        self, node: Mapping[str, Any], work: dict[str, Any], out: dict[str, Any], path: Path
    ) -> None:
        props = work.pop("properties", None)
        props = props if isinstance(props, Mapping) else {}
        out["properties"] = {
            name: self.node(sub, (*path, "properties", name)) for name, sub in props.items()
        }
        extra = work.pop("additionalProperties", False)
        if extra is not False:
            self.refuse("additionalProperties", path, "an object with open or patterned keys "
                        "(a map) cannot be sent in strict mode, which closes every object; "
                        "use a list of key/value objects or fixed property names")  # fmt: skip
        for key in ("patternProperties", "unevaluatedProperties"):
            if key in work:
                work.pop(key)
                self.refuse(key, path, "strict mode closes every object, which this keyword "
                            "would reopen; use fixed property names")  # fmt: skip
        beside = [k for k in COMPOSITION if k in node]
        if props and beside:
            self.refuse("additionalProperties", path, f"properties combined with {beside[0]} "
                        "here: closing the object, as strict mode must, would reject the "
                        "properties the other schema adds; merge them into one object")  # fmt: skip
        out["additionalProperties"] = False
        required = work.pop("required", None)
        if not self.rules.all_required:
            if required is not None:
                out["required"] = list(required)
            return
        needed = set(required) if isinstance(required, list) else set()
        for name in out["properties"]:
            if name not in needed and not accepts_null(out["properties"][name], self.root):
                out["properties"][name] = _nullable(out["properties"][name])
                self.nullable = True
        out["required"] = list(out["properties"])

    def _rest(self, work: dict[str, Any], out: dict[str, Any], path: Path) -> None:
        """Keep what the grammar takes; refuse or move the rest into the description."""
        rules = self.rules
        moved: dict[str, Any] = {}
        for key, value in work.items():
            if key in rules.refused:
                self.refuse(key, path, rules.refused[key])
            elif key in rules.kept and self._takes(key, value):
                out[key] = value
            else:
                moved[key] = value
                self.moved.append((key, pointer(path)))
        if moved:
            # The format of Anthropic's SDK: "{key: value, ...}" after the description.
            note = "{" + ", ".join(f"{k}: {v}" for k, v in moved.items()) + "}"
            description = out.get("description")
            out["description"] = (f"{description}\n\n" if description is not None else "") + note

    def _takes(self, key: str, value: Any) -> bool:
        if key == "format":
            return value in self.rules.formats
        if key == "minItems":
            return self.rules.min_items is None or value in self.rules.min_items
        return True


def _has_properties(schema: Any, root: Mapping[str, Any]) -> bool:
    target = deref(schema, root)
    return isinstance(target, Mapping) and "properties" in target


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null, the way vendors document an optional field in strict mode."""
    outer: dict[str, Any] = {
        k: schema.pop(k) for k in ("title", "description", "default") if k in schema
    }
    branches = schema["anyOf"] if list(schema) == ["anyOf"] else [schema]
    return {"anyOf": [*branches, {"type": "null"}], **outer}
