"""A schema profile: what one server accepts and enforces, as data.

Each hosted vendor documents a subset of JSON Schema that its strict mode compiles into a
decoding grammar, and refuses (HTTP 400) a strict request that steps outside it. A profile
records that subset, so that tether sends only what the server accepts and reports only the
enforcement the server really gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tether.errors import SchemaProblem


@dataclass(frozen=True)
class Limits:
    """Documented size limits of a strict mode (None: no limit documented)."""

    max_properties: int | None = None  # object properties, in total
    max_depth: int | None = None  # levels of nested objects
    max_enum_values: int | None = None  # enum values, in total
    max_string_chars: int | None = None  # property and definition names, enum and const strings
    large_enum: int | None = None  # a string enum with more values than this...
    large_enum_chars: int | None = None  # ...may total at most this many characters
    max_optional: int | None = None  # properties left out of `required`, in total
    max_unions: int | None = None  # properties typed by anyOf or a list of types, in total


@dataclass(frozen=True)
class SchemaProfile:
    """The rules of one server's structured output.

    `strict`: the schema is rewritten into the vendor's strict subset (None: sent as it is).
    `decoded`: keywords enforced while decoding; anything else in a sent schema is validated
    after. `needs_strict`: nothing is enforced unless the request says `strict: true`.
    """

    name: str
    decoded: frozenset[str]
    needs_strict: bool
    strict: StrictRules | None = None
    # How the schema travels: OpenAI's `response_format`, or a forced tool's input schema.
    carrier: Literal["response_format", "tool"] = "response_format"


@dataclass(frozen=True)
class StrictRules:
    """How a schema is rewritten for a vendor's strict mode (mirrors the vendor's SDK)."""

    # Kept on the schema and enforced while decoding, each where its type allows it.
    kept: frozenset[str]
    # Annotations sent as they are.
    annotations: frozenset[str]
    # String formats the grammar knows; any other format is moved into the description.
    formats: frozenset[str]
    # Documented as unsupported and impossible to move into a description without changing
    # what the schema admits: refused, keyword -> reason.
    refused: Mapping[str, str] = field(default_factory=dict)
    # minItems values the grammar takes (None: any).
    min_items: frozenset[int] | None = None
    # Every property must be required; optional ones become required and nullable.
    all_required: bool = False
    # The root must be an object (not anyOf): any other root is wrapped in {"value": ...}
    # ("wrap") or refused ("refuse").
    other_root: Literal["wrap", "refuse"] = "refuse"
    # `$ref` with sibling keywords: "inline" the target, or "drop" the siblings.
    ref_siblings: Literal["inline", "drop"] = "drop"
    # An `enum` or `const` replaces `type` (Anthropic's SDK drops the redundant type).
    literals_drop_type: bool = False
    # `allOf` with more than one branch is refused.
    refuse_all_of: bool = False
    # Recursive `$ref` cycles are refused.
    refuse_recursion: bool = False
    # `default: null` is dropped (OpenAI's SDK; the field is nullable anyway).
    drop_null_default: bool = False
    limits: Limits = Limits()


Mode = Literal["json_schema", "json_object", "declared"]


@dataclass(frozen=True)
class WirePlan:
    """What one request carries for a contract schema, and what that enforces.

    `schema` is what goes on the wire; `strict` the flag sent with it. `moved` lists the
    keywords (with their pointers in the contract schema) that went into descriptions and are
    only validated after. `wrapped`: the value travels as {"value": ...} and is unwrapped on
    the way back. `nullable`: optional properties were sent required and nullable, so a null
    that the contract does not allow means "absent" and is dropped before validation.

    Plans are cached and shared between calls: never mutate one, or its schema.
    """

    profile: str
    mode: Mode
    schema: dict[str, Any]
    strict: bool
    decoded: frozenset[str]
    moved: tuple[tuple[str, str], ...] = ()
    problems: tuple[SchemaProblem, ...] = ()
    wrapped: bool = False
    nullable: bool = False

    @property
    def enforces(self) -> bool:
        """Whether the server enforces anything of the schema while decoding."""
        return self.mode == "json_schema" and not self.problems and bool(self.decoded)
