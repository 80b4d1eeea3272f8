"""Grammar-constrained decoding with llguidance: a JSON Schema becomes a token mask per step.

llguidance computes the set of allowed next tokens in about a millisecond for a 262k-token
vocabulary, which keeps constrained generation within a few percent of free generation
(llama.cpp's own GBNF grammar was 2.5-3.4x slower on the same model and schemas).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from llguidance import LLMatcher, LLTokenizer
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions  # a TypedDict that exists only in the stubs

# Compact JSON, no free whitespace: small models otherwise drift into runs of spaces/newlines.
_STRICT_OPTIONS: JsonCompileOptions = {"whitespace_flexible": False}
_LENIENT_OPTIONS: JsonCompileOptions = {"whitespace_flexible": False, "lenient": True}

# Keywords llguidance enforces token by token (checked against llguidance 1.9: the others are
# reported as unimplemented and are left to the validator).
ENFORCED_KEYWORDS = frozenset(
    {
        "type", "enum", "const", "properties", "required", "additionalProperties",
        "patternProperties", "minProperties", "maxProperties", "items", "prefixItems",
        "additionalItems", "minItems", "maxItems", "minLength", "maxLength", "pattern", "format",
        "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "anyOf",
        "allOf", "$ref",
    }
)  # fmt: skip


# How llguidance's lenient mode names what it relaxed, in its compile warnings.
_UNIMPLEMENTED = re.compile(r"Unimplemented keys: (\[.*?\])")
_UNKNOWN_FORMAT = "Unknown format"


class GrammarError(Exception):
    """llguidance cannot turn the schema into a grammar."""


@functools.lru_cache(maxsize=256)
def _compile(schema_json: str) -> str:
    for options in (_STRICT_OPTIONS, _LENIENT_OPTIONS):
        grammar = LLMatcher.grammar_from_json_schema(schema_json, defaults=options)
        error = LLMatcher.validate_grammar(grammar)
        if not error:
            return grammar
    raise GrammarError(error)


@functools.lru_cache(maxsize=256)
def _lenient_drops(schema_json: str) -> frozenset[str]:
    grammar = LLMatcher.grammar_from_json_schema(schema_json, defaults=_STRICT_OPTIONS)
    if not LLMatcher.validate_grammar(grammar):
        return frozenset()  # compiles as written: nothing relaxed
    grammar = LLMatcher.grammar_from_json_schema(schema_json, defaults=_LENIENT_OPTIONS)
    _, warnings = LLMatcher.validate_grammar_with_warnings(grammar)
    dropped: set[str] = set()
    for warning in warnings:
        if warning.startswith(_UNKNOWN_FORMAT):
            dropped.add("format")
        for found in _UNIMPLEMENTED.findall(warning):
            dropped.update(k for k in json.loads(found) if isinstance(k, str))
    return frozenset(dropped)


def lenient_drops(schema: Mapping[str, Any]) -> frozenset[str]:
    """Keywords the compiled grammar leaves out (lenient mode relaxes them: an unknown
    `format`, a keyword llguidance does not implement); they are only validated after."""
    return _lenient_drops(json.dumps(schema))


def compile_json_schema(schema: Mapping[str, Any]) -> str:
    """An llguidance grammar for `schema`. Keywords llguidance does not implement are relaxed
    (lenient mode) and left to validation; a schema it cannot compile at all raises."""
    # Key order is kept: it is the order in which the model writes the properties.
    return _compile(json.dumps(schema))


def compile_lark(grammar: str) -> str:
    """An llguidance grammar from llguidance's Lark dialect (which embeds JSON schemas with
    `%json`); raises GrammarError where it does not compile."""
    compiled = LLMatcher.grammar_from_lark(grammar)
    error = LLMatcher.validate_grammar(compiled)
    if error:
        raise GrammarError(error)
    return compiled


class GrammarConstraint:
    """A llama-cpp-python logits processor that masks every token the grammar forbids."""

    def __init__(self, tokenizer: LLTokenizer, grammar: str) -> None:
        self._matcher = LLMatcher(tokenizer, grammar, log_level=0)
        self._bitmask = allocate_token_bitmask(1, tokenizer.vocab_size)
        self._bits = self._bitmask.view(np.uint8)
        self._seen: int | None = None

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        if self._seen is None:  # first step: everything so far is prompt
            self._seen = len(input_ids)
        for token in input_ids[self._seen :]:
            self._matcher.consume_token(int(token))
        self._seen = len(input_ids)
        fill_next_token_bitmask(self._matcher, self._bitmask)
        allowed = np.unpackbits(self._bits, bitorder="little")[: scores.shape[-1]]
        scores[allowed == 0] = -np.inf
        return scores

    @property
    def error(self) -> str | None:
        return self._matcher.get_error() if self._matcher.is_error() else None
