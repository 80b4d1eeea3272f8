"""Checks a schema passes before anything compiles or walks it.

A schema may come from a gateway caller, so it must not be able to turn the server against
itself: it is refused when it nests deeper than every later walker can safely recurse, or when
a `$schema` or reference names anything but the schema itself or a draft meta-schema bundled
with jsonschema-rs. Nothing a schema says is ever fetched or read from disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tether.errors import SchemaError

# Nesting of JSON objects and arrays: about 30 levels of nested properties, far more than any
# real contract needs, and well inside orjson's, jsonschema-rs's and Python's recursion limits.
MAX_SCHEMA_DEPTH = 64

# The draft meta-schemas jsonschema-rs bundles, by their canonical URIs (an empty fragment
# names the same document).
META_SCHEMAS = frozenset(
    {
        "http://json-schema.org/draft-04/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-07/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    }
)
_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")
_SHOWN_CHARS = 80


def check_schema(schema: Any, *, source: str) -> None:
    """Raise SchemaError for a schema too deep to walk, or one that refers outside itself."""
    # Iterative on purpose: this runs before the depth is known to be safe.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if len(path) > MAX_SCHEMA_DEPTH:
            raise SchemaError(
                f"nested more than {MAX_SCHEMA_DEPTH} levels deep",
                source=source,
                pointer=pointer(path),
                fix="flatten the schema: define repeated parts once under $defs and refer to "
                "them with $ref",
            )
        if isinstance(node, Mapping):
            _check_references(node, path, source)
            stack.extend((value, (*path, str(key))) for key, value in node.items())
        elif isinstance(node, list | tuple):
            stack.extend((value, (*path, index)) for index, value in enumerate(node))


def pointer(path: Sequence[str | int]) -> str:
    """A JSON Pointer (RFC 6901) for an instance or schema path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def _check_references(node: Mapping[str, Any], path: tuple[str | int, ...], source: str) -> None:
    meta = node.get("$schema")
    # A non-string value is a property named "$schema" (only a URI string is ever resolved).
    if isinstance(meta, str) and meta.removesuffix("#") not in META_SCHEMAS:
        raise SchemaError(
            f"$schema {_shown(meta)} is not a bundled draft meta-schema "
            "(schemas are never fetched)",
            source=source,
            pointer=pointer((*path, "$schema")),
            fix="drop $schema (draft 2020-12 is assumed) or name one of: "
            + ", ".join(sorted(META_SCHEMAS)),
        )
    for keyword in _REFERENCES:
        ref = node.get(keyword)
        # A non-string value is a property named "$ref", or left to meta-validation.
        if isinstance(ref, str) and not (ref.startswith("#") or _meta_schema(ref)):
            raise SchemaError(
                f"{keyword} {_shown(ref)} points outside the schema "
                "(references are never fetched or read)",
                source=source,
                pointer=pointer((*path, keyword)),
                fix="define the referenced schema under $defs and refer to it as '#/$defs/<name>'",
            )


def _meta_schema(uri: str) -> bool:
    """A bundled meta-schema, or a part of one (`...draft-07/schema#/definitions/...`)."""
    document, _, fragment = uri.partition("#")
    return document in META_SCHEMAS and (fragment == "" or fragment.startswith("/"))


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
