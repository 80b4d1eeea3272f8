"""Output contracts: a JSON Schema, optionally backed by a Pydantic model, that outputs meet."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from tether.contracts.validator import Check, SchemaValidator
from tether.errors import SchemaError
from tether.providers.schema_profiles.refs import resolve

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]+")


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, eq=False)
class Contract(Generic[T]):
    """A named JSON Schema plus the function that turns a valid value into `T`."""

    name: str
    schema: Mapping[str, Any]
    convert: Callable[[Any], T]
    validator: SchemaValidator = field(repr=False)

    @classmethod
    def from_model(cls, model: type[M]) -> Contract[M]:
        schema = model.model_json_schema()
        return Contract(
            name=_safe_name(model.__name__),
            schema=schema,
            convert=model.model_validate,
            validator=SchemaValidator(schema, source=f"model {model.__name__}"),
        )

    @classmethod
    def from_schema(
        cls, schema: Mapping[str, Any], *, name: str | None = None, source: str = "schema"
    ) -> Contract[Any]:
        title = schema.get("title") if isinstance(schema, Mapping) else None
        label = name or (title if isinstance(title, str) else None) or "output"
        return Contract(
            name=_safe_name(label),
            schema=schema,
            convert=_identity,
            validator=SchemaValidator(schema, source=source),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> Contract[Any]:
        """Load a JSON Schema file; errors name the file and the line."""
        file = Path(path)
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise SchemaError(
                f"cannot read file: {exc.strerror}", source=str(file), fix="check the path"
            ) from None
        try:
            schema = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SchemaError(
                f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
                source=str(file),
                fix="fix the JSON syntax at that position",
            ) from None
        if not isinstance(schema, dict):
            raise SchemaError(
                f"the top level must be a JSON object, not {type(schema).__name__}",
                source=str(file),
            )
        return cls.from_schema(schema, name=file.stem, source=str(file))

    def check(self, text: str) -> tuple[Check, T | None]:
        """Validate raw output; on success also convert it (a Pydantic model may add rules)."""
        result = self.validator.check_text(text)
        if not result.ok:
            return result, None
        try:
            return result, self.convert(result.value)
        except ValidationError as exc:
            errors = tuple(
                f"at /{'/'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            return Check(result.value, errors), None

    def enforcement_schema(self) -> tuple[dict[str, Any], bool]:
        """The schema sent to providers, and whether it is strict-shaped (every object closed,
        every property required), which is what strict upstream modes demand as it stands.

        Objects that allow extra properties by default get `additionalProperties: false`:
        every value the tightened schema admits is admitted by the contract, and it keeps small
        models from inventing keys. An object is left open where closing it could reject a
        valid value: beside anyOf/oneOf/allOf/$ref/if/then/else/dependentSchemas, which can add
        properties of their own, and anywhere in a schema that uses allOf (a closed branch
        would reject the properties of another). Extra keys there are the contract's to allow.
        """
        schema = copy.deepcopy(dict(self.schema))
        if _uses(schema, "allOf"):
            return schema, False
        _tighten(schema)
        return schema, strict_shaped(schema)


def _safe_name(name: str) -> str:
    """Tool and schema names upstream accept only [a-zA-Z0-9_-]{1,64}."""
    return (_NAME_UNSAFE.sub("_", name).strip("_") or "output")[:64]


# Keywords whose values are data, not subschemas: never rewritten, never searched.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in a schema outside data keywords (iterative: no recursion limit)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(v for k, v in item.items() if k not in _DATA_KEYWORDS)
        elif isinstance(item, list):
            stack.extend(item)


def _uses(node: Any, keyword: str) -> bool:
    return any(keyword in obj for obj in _objects(node))


# Keywords that add properties to an object from beside it (see `enforcement_schema`).
_COMPOSITION = ("anyOf", "oneOf", "allOf", "$ref", "if", "then", "else", "dependentSchemas")
_OPENERS = ("additionalProperties", "patternProperties", "unevaluatedProperties")


def _tighten(node: Any) -> None:
    """Close, in place, the open objects that closing cannot make unsatisfiable."""
    combined = _combined(node)
    for obj in _objects(node):
        if (
            isinstance(obj.get("properties"), dict)
            and id(obj) not in combined
            and not any(k in obj for k in _OPENERS)
            and not any(k in obj for k in _COMPOSITION)
        ):
            obj["additionalProperties"] = False


def _combined(root: Any) -> set[int]:
    """Objects whose properties are joined with an object's own properties beside them (its
    anyOf/oneOf/allOf/if/then/else branches, its $ref target, and what those lead to): closed,
    either would reject the other's properties."""
    found: set[int] = set()
    todo: list[Any] = []
    for obj in _objects(root):
        if isinstance(obj.get("properties"), dict):
            for key in _COMPOSITION:
                value = obj.get(key)
                if key == "$ref" and isinstance(value, str):
                    todo.append(resolve(root, value))
                elif key == "dependentSchemas" and isinstance(value, dict):
                    todo.extend(value.values())
                elif isinstance(value, list):
                    todo.extend(value)
                elif isinstance(value, dict):
                    todo.append(value)
    while todo:
        branch = todo.pop()
        if not isinstance(branch, dict) or id(branch) in found:
            continue
        found.add(id(branch))
        ref = branch.get("$ref")
        if isinstance(ref, str):
            todo.append(resolve(root, ref))
        for key in ("anyOf", "oneOf", "allOf"):
            if isinstance(branch.get(key), list):
                todo.extend(branch[key])
    return found


def strict_shaped(schema: Any) -> bool:
    """Whether every object with properties is closed and requires all of them, and nothing
    uses allOf: the shape OpenAI-style strict modes accept without a rewrite."""
    if _uses(schema, "allOf"):
        return False
    for obj in _objects(schema):
        props = obj.get("properties")
        if isinstance(props, dict) and not (
            obj.get("additionalProperties") is False and set(obj.get("required", [])) == set(props)
        ):
            return False
    return True
