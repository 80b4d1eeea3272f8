"""Compiled JSON Schema validation (jsonschema-rs) with errors people can act on.

jsonschema-rs compiles a schema once into a Rust validator: validation is one native call,
which is what keeps `validate` cheap enough to run on every response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema_rs
import orjson

from tether.errors import SchemaError

MAX_REPORTED_ERRORS = 10


def pointer(path: Sequence[str | int]) -> str:
    """A JSON Pointer (RFC 6901) for an instance or schema path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _no_remote_refs(uri: str) -> Any:
    raise jsonschema_rs.ReferencingError(
        f"remote $ref {uri!r} is not fetched; inline it under $defs"
    )


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
        try:
            jsonschema_rs.meta.validate(plain)
            self._validator = jsonschema_rs.validator_for(
                plain, retriever=_no_remote_refs, validate_formats=True
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
