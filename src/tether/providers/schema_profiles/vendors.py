"""The profiles, one per vendor and per OpenAI-compatible engine, from their documentation.

OpenAI: "Structured Outputs", supported schemas (platform.openai.com/docs/guides/structured-
outputs): keywords per type, every field required (optional = union with null), closed
objects, an object root that is not anyOf, no allOf/not/if/then/else/dependent*, and size
limits. Its SDK's converter (`openai.lib._pydantic.to_strict_json_schema`) inlines a `$ref`
that has siblings and drops `default: null`.

Anthropic: "Structured outputs", JSON Schema limitations (docs.claude.com): no numeric or
string-length bounds, minItems only 0 or 1, additionalProperties only false, no recursion;
at most 24 optional and 16 union-typed parameters across strict schemas. Its SDK's transform
(`anthropic.lib._parse._transform.transform_schema`) moves what it does not support into the
description, keeps `required` as given and sends a `$ref` alone.

OpenAI-compatible engines enforce what their grammar compilers implement, whatever the
`strict` flag says; a server of unknown kind is credited only with the structure every
engine enforces, and only when asked to be strict.
"""

from __future__ import annotations

from tether.providers.schema_profiles.profile import Limits, SchemaProfile, StrictRules

_STRUCTURE = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "const",
     "anyOf", "$ref"}
)  # fmt: skip
_TUPLES = {
    "prefixItems": "strict mode here takes no tuples; use an object with named properties",
    "additionalItems": "strict mode here takes no tuples; use an object with named properties",
}

OPENAI_RULES = StrictRules(
    kept=_STRUCTURE
    | {"pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
       "multipleOf", "minItems", "maxItems"},
    annotations=frozenset({"title", "description", "default"}),
    formats=frozenset(
        {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
    ),
    refused=_TUPLES,
    all_required=True,
    other_root="wrap",
    ref_siblings="inline",
    refuse_all_of=True,
    drop_null_default=True,
    limits=Limits(
        max_properties=5000,
        max_depth=10,
        max_enum_values=1000,
        max_string_chars=120_000,
        large_enum=250,
        large_enum_chars=15_000,
    ),
)  # fmt: skip

ANTHROPIC_RULES = StrictRules(
    kept=_STRUCTURE | {"allOf", "format", "minItems"},
    annotations=frozenset({"title", "description"}),
    formats=frozenset(
        {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6",
         "uuid"}
    ),
    refused=_TUPLES,
    min_items=frozenset({0, 1}),
    literals_drop_type=True,
    refuse_recursion=True,
    limits=Limits(max_optional=24, max_unions=16),
)  # fmt: skip

# Keywords the grammar compilers of llama.cpp's server (json-schema-to-grammar, also behind
# Ollama's `format`) and vLLM's default backend implement token by token.
_GRAMMAR_KEYWORDS = _STRUCTURE | {"pattern", "minLength", "maxLength", "minItems", "maxItems"}

PROFILES: dict[str, SchemaProfile] = {
    p.name: p
    for p in (
        SchemaProfile(
            "openai",
            decoded=OPENAI_RULES.kept | {"oneOf", "allOf"},
            needs_strict=True,
            strict=OPENAI_RULES,
        ),
        SchemaProfile(
            "anthropic",
            decoded=ANTHROPIC_RULES.kept | {"oneOf"},
            needs_strict=True,
            strict=ANTHROPIC_RULES,
            carrier="tool",
        ),
        SchemaProfile("vllm", decoded=_GRAMMAR_KEYWORDS, needs_strict=False),
        SchemaProfile(
            "llama-server", decoded=_GRAMMAR_KEYWORDS | {"prefixItems"}, needs_strict=False
        ),
        SchemaProfile("ollama", decoded=_GRAMMAR_KEYWORDS | {"prefixItems"}, needs_strict=False),
        SchemaProfile("generic", decoded=_STRUCTURE, needs_strict=True),
    )
}

# The engine an OpenAI-compatible URL gets when its model's settings name none.
ENGINE_BY_HOST = {"api.openai.com": "openai"}
DEFAULT_ENGINE = "generic"
