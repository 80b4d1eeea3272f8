"""Compiled JSON Schema validation (jsonschema-rs) with errors people can act on.

jsonschema-rs compiles a schema once into a Rust validator: validation is one native call,
which is what keeps `validate` cheap enough to run on every response.

A schema is checked by `guard.check_schema` before jsonschema-rs sees it, and jsonschema-rs
itself runs offline: meta-validation resolves only its bundled draft meta-schemas, and
compilation only references inside the schema. Nothing is fetched, nothing is read from disk.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import orjson

from tether.contracts.guard import check_schema, pointer
from tether.errors import SchemaError

__all__ = ["MAX_REPORTED_ERRORS", "Check", "SchemaValidator", "pointer"]

MAX_REPORTED_ERRORS = 10


def _never_retrieve(uri: str) -> Any:
    raise jsonschema_rs.ReferencingError(f"{uri!r} is not fetched; inline it under $defs")


@functools.cache
def _offline_registry() -> jsonschema_rs.Registry:
    """An empty registry that refuses to retrieve: meta-validation sees only bundled drafts."""
    return jsonschema_rs.Registry([], retriever=_never_retrieve)


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of checking one raw output: the parsed value, or the reasons it failed."""

    value: Any
    errors: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


class SchemaValidator:
    """A JSON Schema compiled once; validates parsed values or raw JSON text."""

    __slots__ = ("_validator", "schema")

    def __init__(self, schema: Mapping[str, Any] | bool, *, source: str = "schema") -> None:
        if not isinstance(schema, bool | Mapping):
            raise SchemaError(
                f"a schema is a JSON object or boolean, not {type(schema).__name__}",
                source=source,
            )
        self.schema = schema
        plain: Any = schema if isinstance(schema, bool) else dict(schema)
        check_schema(plain, source=source)
        try:
            jsonschema_rs.meta.validate(plain, registry=_offline_registry())
            self._validator = jsonschema_rs.validator_for(
                plain, offline=True, validate_formats=True
            )
        except jsonschema_rs.ValidationError as exc:
            raise SchemaError(
                exc.message, source=source, pointer=pointer(exc.instance_path)
            ) from None
        except jsonschema_rs.ReferencingError as exc:
            raise SchemaError(str(exc), source=source) from None
        except ValueError as exc:  # e.g. an invalid regex in `pattern`
            raise SchemaError(str(exc), source=source) from None

    def is_valid(self, value: Any) -> bool:
        return self._validator.is_valid(value)

    def errors(self, value: Any) -> tuple[str, ...]:
        found: list[str] = []
        for err in self._validator.iter_errors(value):
            found.append(f"at {pointer(err.instance_path) or '/'}: {err.message}")
            if len(found) == MAX_REPORTED_ERRORS:
                break
        return tuple(found)

    def check_text(self, text: str) -> Check:
        """Parse `text` as JSON and validate it."""
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return Check(None, (f"not valid JSON: {exc}",))
        if self._validator.is_valid(value):
            return Check(value, ())
        return Check(value, self.errors(value))
