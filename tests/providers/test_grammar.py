"""The grammar constraint's cap on number length, on a small made-up vocabulary: a model that
keeps choosing a digit is stopped after MAX_NUMBER_DIGITS of them, wherever the grammar lets it
write something else."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest
from llguidance import LLTokenizer
from llguidance._tokenizer import TokenizerWrapper

from tether.providers.grammar import (
    MAX_EXPONENT_DIGITS,
    MAX_NUMBER_DIGITS,
    MAX_STRING_DIGITS,
    GrammarConstraint,
    NumberRun,
    compile_json_schema,
    vocabulary,
)

EOS = b"<eos>"
# Every printable ASCII byte, a few multi-byte pieces, then the end token.
PIECES = [bytes([b]) for b in range(0x20, 0x7F)] + [b"12", b"0}", b'":', EOS]


class _Greedy:
    """A byte-level greedy tokenizer over PIECES (longest piece first)."""

    eos_token_id = len(PIECES) - 1
    bos_token_id = None
    tokens = PIECES
    special_token_ids: ClassVar[list[int]] = [len(PIECES) - 1]

    def __call__(self, data: bytes) -> list[int]:
        out: list[int] = []
        while data:
            best = max(
                (i for i, p in enumerate(PIECES[:-1]) if data.startswith(p)),
                key=lambda i: len(PIECES[i]),
            )
            out.append(best)
            data = data[len(PIECES[best]) :]
        return out


@pytest.fixture(scope="module")
def tokenizer() -> LLTokenizer:
    return LLTokenizer(TokenizerWrapper(_Greedy()), slices=[])


def token(piece: bytes) -> int:
    return PIECES.index(piece)


def decode(schema: dict[str, object], tokenizer: LLTokenizer, prefer: list[bytes]) -> bytes:
    """Greedy decoding under the constraint by a 'model' that ranks the pieces in `prefer`
    first to last, then the end token, everything else below them; until the end token or 80
    steps."""
    constraint = GrammarConstraint(tokenizer, compile_json_schema(schema))
    ranking = np.full(len(PIECES), -10.0, dtype=np.single)
    for rank, piece in enumerate([*prefer, EOS]):
        ranking[token(piece)] = 10.0 - rank
    ids = [token(b" ")]  # the prompt
    for _ in range(80):
        scores = constraint(np.array(ids, dtype=np.intc), ranking.copy())
        assert np.isfinite(scores).any(), "the constraint left no token"
        chosen = int(np.argmax(scores))
        if chosen == _Greedy.eos_token_id:
            break
        ids.append(chosen)
    assert constraint.error is None
    return b"".join(PIECES[i] for i in ids[1:])


def feed(*pieces: bytes) -> NumberRun:
    run = NumberRun()
    for piece in pieces:
        run.feed(piece)
    return run


def test_the_run_counts_the_digits_of_the_number_being_written() -> None:
    assert feed(b'{"a":', b"1" * 16).mantissa == 16
    assert not feed(b'{"a":', b"1" * 16).capped
    assert feed(b'{"a":-', b"1" * 10, b".", b"2" * 7).capped  # integer part and fraction
    assert not feed(b'{"a":', b"1" * 17, b",").capped  # the number ended
    assert not feed(b'{"a":', b"1" * 17, b',"b":', b"2").capped  # a new number
    assert feed(b"[1,", b"2" * MAX_NUMBER_DIGITS).capped


def test_digits_inside_strings_are_not_a_number() -> None:
    assert not feed(b'{"a":"', b"1" * 20).capped
    assert not feed(b'["x\\"', b"1" * 20).capped  # an escaped quote does not end the string
    assert feed(b'["x\\"', b"1" * 4, b'",', b"1" * 17).capped


def test_a_string_has_a_looser_bound_on_digit_runs() -> None:
    assert not feed(b'{"a":"', b"1" * (MAX_STRING_DIGITS - 1)).capped
    assert feed(b'{"a":"', b"1" * MAX_STRING_DIGITS).capped
    assert not feed(b'{"a":"', b"1" * 30, b"-", b"1" * 30).capped  # the run restarts
    assert not feed(b'{"a":"', b"1" * MAX_STRING_DIGITS, b'"').capped  # the string ended


def test_the_exponent_has_its_own_bound() -> None:
    assert not feed(b"1.5e", b"9" * (MAX_EXPONENT_DIGITS - 1)).capped
    assert feed(b"1.5E+", b"9" * MAX_EXPONENT_DIGITS).capped


def test_vocabulary_marks_the_tokens_that_open_with_a_digit(tokenizer: LLTokenizer) -> None:
    found = vocabulary(tokenizer)
    marked = {PIECES[i] for i in np.flatnonzero(found.digit_start)}
    assert marked == {b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"12", b"0}"}
    assert vocabulary(tokenizer) is found  # built once per tokenizer


def test_a_model_that_only_wants_digits_stops_at_the_bound(tokenizer: LLTokenizer) -> None:
    out = decode({"type": "number"}, tokenizer, [b"1", b"12"])
    assert out == b"1" * MAX_NUMBER_DIGITS
    assert json.loads(out) == int("1" * MAX_NUMBER_DIGITS)


def test_multi_digit_tokens_count_every_digit(tokenizer: LLTokenizer) -> None:
    out = decode({"type": "integer"}, tokenizer, [b"12"])
    assert out == b"12" * (MAX_NUMBER_DIGITS // 2 + 1)  # the last one crosses the bound


def test_a_digit_the_grammar_demands_is_still_allowed(tokenizer: LLTokenizer) -> None:
    # After the bound the model turns to `.`, and the grammar then requires one digit.
    out = decode({"type": "number"}, tokenizer, [b"1", b"."])
    assert out == b"1" * MAX_NUMBER_DIGITS + b".1"
    assert isinstance(json.loads(out), float)


def test_numbers_inside_an_object_end_and_the_object_closes(tokenizer: LLTokenizer) -> None:
    schema = {
        "type": "object",
        "properties": {"value": {"type": "number"}},
        "required": ["value"],
        "additionalProperties": False,
    }
    out = decode(schema, tokenizer, [b"1", b"}"])
    assert json.loads(out) == {"value": int("1" * MAX_NUMBER_DIGITS)}


def test_digits_in_a_string_run_to_the_string_bound(tokenizer: LLTokenizer) -> None:
    out = decode({"type": "string"}, tokenizer, [b"7", b'"'])
    assert out == b'"' + b"7" * MAX_STRING_DIGITS + b'"'


def test_a_pattern_that_demands_digits_gets_them(tokenizer: LLTokenizer) -> None:
    out = decode({"type": "string", "pattern": "^[0-9]{40}$"}, tokenizer, [b"7", b'"'])
    assert out == b'"' + b"7" * 40 + b'"'
