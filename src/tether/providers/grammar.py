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
from dataclasses import dataclass
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


# The most digits one JSON number may have before its own digits, then its exponent's, stop
# being extended. 17 significant digits are the most a float64 needs (Python's repr never writes
# more) and cover integers past 10**16; three exponent digits reach float64's range (1e308). A
# longer run is a small model repeating a digit until max_tokens, which llguidance allows (a
# JSON number has no length bound), and no value the caller can hold exactly.
MAX_NUMBER_DIGITS = 17
MAX_EXPONENT_DIGITS = 3
# Inside a string a run of digits is bounded more loosely: longer than any card, account or
# phone number, one-time code or timestamp, shorter than a model counting "1234567890..." until
# max_tokens. A string whose pattern demands more digits still gets them.
MAX_STRING_DIGITS = 32

_DIGITS = frozenset(b"0123456789")
_NUMBER_START = frozenset(b"-0123456789")


class NumberRun:
    """Where the output stands in JSON: inside a string or not, and the digits written so far
    in the number being written (mantissa, then exponent). Fed each sampled token's bytes."""

    __slots__ = ("escaped", "exponent", "in_number", "in_string", "mantissa", "string_digits")

    def __init__(self) -> None:
        self.in_string = False
        self.escaped = False
        self.string_digits = 0  # the trailing run of digits inside the string being written
        self.in_number = False
        self.mantissa = 0
        self.exponent: int | None = None  # digits after `e`, once there is one

    def feed(self, piece: bytes) -> None:
        for byte in piece:
            if self.in_string:
                self.string_digits = self.string_digits + 1 if byte in _DIGITS else 0
                if self.escaped:
                    self.escaped = False
                elif byte == 0x5C:  # backslash
                    self.escaped = True
                elif byte == 0x22:  # closing quote
                    self.in_string = False
            elif byte == 0x22:
                self.in_string, self.in_number, self.string_digits = True, False, 0
            elif self.in_number and byte in _DIGITS:
                if self.exponent is None:
                    self.mantissa += 1
                else:
                    self.exponent += 1
            elif self.in_number and byte in b"eE":
                self.exponent = 0
            elif self.in_number and byte in b".+-":
                pass
            elif byte in _NUMBER_START:
                self.in_number, self.exponent = True, None
                self.mantissa = 1 if byte in _DIGITS else 0
            else:
                self.in_number = False

    @property
    def capped(self) -> bool:
        """The number being written has as many digits as it may have (in its current part), or
        the string being written ends in as long a run of digits as it may."""
        if self.in_string:
            return self.string_digits >= MAX_STRING_DIGITS
        if not self.in_number:
            return False
        if self.exponent is None:
            return self.mantissa >= MAX_NUMBER_DIGITS
        return self.exponent >= MAX_EXPONENT_DIGITS


@dataclass(frozen=True)
class Vocabulary:
    """Each token's bytes, and which tokens open with a digit (those that would extend a
    number), read once per tokenizer."""

    pieces: tuple[bytes, ...]
    digit_start: npt.NDArray[np.bool_]


_vocabularies: dict[int, tuple[LLTokenizer, Vocabulary]] = {}


def vocabulary(tokenizer: LLTokenizer) -> Vocabulary:
    """The tokenizer's Vocabulary, built on first use (a few tens of milliseconds for a 262k
    vocabulary) and kept with the tokenizer it describes."""
    held = _vocabularies.get(id(tokenizer))
    if held is not None and held[0] is tokenizer:
        return held[1]
    pieces = tuple(tokenizer.decode_bytes([t]) for t in range(tokenizer.vocab_size))
    digit_start = np.fromiter(
        (bool(p) and p[0] in _DIGITS for p in pieces), dtype=np.bool_, count=len(pieces)
    )
    found = Vocabulary(pieces, digit_start)
    _vocabularies[id(tokenizer)] = (tokenizer, found)
    return found


class GrammarConstraint:
    """A llama-cpp-python logits processor that masks every token the grammar forbids, and
    every token that would extend a number past MAX_NUMBER_DIGITS digits (its exponent past
    MAX_EXPONENT_DIGITS, a run of digits in a string past MAX_STRING_DIGITS) wherever the
    grammar allows something else."""

    def __init__(self, tokenizer: LLTokenizer, grammar: str) -> None:
        self._matcher = LLMatcher(tokenizer, grammar, log_level=0)
        self._bitmask = allocate_token_bitmask(1, tokenizer.vocab_size)
        self._bits = self._bitmask.view(np.uint8)
        self._vocab = vocabulary(tokenizer)
        self._run = NumberRun()
        self._seen: int | None = None

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        if self._seen is None:  # first step: everything so far is prompt
            self._seen = len(input_ids)
        for token in input_ids[self._seen :]:
            self._matcher.consume_token(int(token))
            self._run.feed(self._piece(int(token)))
        self._seen = len(input_ids)
        fill_next_token_bitmask(self._matcher, self._bitmask)
        allowed = np.unpackbits(self._bits, bitorder="little")[: scores.shape[-1]].view(np.bool_)
        if self._run.capped:
            digit_start = self._vocab.digit_start
            n = min(allowed.shape[0], digit_start.shape[0])
            shorter = allowed.copy()
            shorter[:n] &= ~digit_start[:n]
            if shorter.any():  # where the grammar demands a digit (after `.` or `e`), it gets one
                allowed = shorter
        scores[~allowed] = -np.inf
        return scores

    def _piece(self, token: int) -> bytes:
        pieces = self._vocab.pieces
        return pieces[token] if 0 <= token < len(pieces) else b""

    @property
    def error(self) -> str | None:
        return self._matcher.get_error() if self._matcher.is_error() else None
