"""The signals of hand-made requests: the plain numbers, confidence found by mark and by name,
enum labels, the evasive score, and lexical diversity over a window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from tether.cache.embedders.testing import FakeEmbedder
from tether.observe.detectors import DiversityWindow, EvasiveDetector, pattern_score
from tether.observe.signals import (
    SchemaFields,
    Signal,
    SignalInput,
    compute_signals,
    schema_signals,
)


def make_input(**kw: Any) -> SignalInput:
    fields: dict[str, Any] = {
        "request_id": "req_1",
        "at": datetime(2026, 11, 1, tzinfo=UTC),
        "prompt": "qa",
        "version": "v1",
        "model": "fake",
        "key_id": None,
        "latency_s": 0.25,
        "input_tokens": 10,
        "output_tokens": 4,
        "cost_usd": 0.001,
        "status": 200,
        "valid": None,
        "repairs": 0,
    }
    fields.update(kw)
    return SignalInput(**fields)


def by_name(signals: list[Signal]) -> dict[str, Signal]:
    return {s.name: s for s in signals}


def test_plain_numbers_of_a_free_text_answer() -> None:
    found = by_name(compute_signals(make_input(output="two words", text="two words")))
    assert found["latency_ms"].value == 250.0
    assert found["input_tokens"].value == 10
    assert found["output_tokens"].value == 4
    assert found["cost_usd"].value == 0.001
    assert found["error"].value == 0.0
    assert found["repairs"].value == 0.0
    assert found["length_chars"].value == 9
    assert found["length_words"].value == 2
    assert "valid" not in found  # no contract
    assert "confidence" not in found


def test_a_failed_request_is_an_error_and_invalid() -> None:
    found = by_name(compute_signals(make_input(status=422, valid=False, repairs=2, text="{")))
    assert found["error"].value == 1.0
    assert found["valid"].value == 0.0
    assert found["repairs"].value == 2.0


class Meta(BaseModel):
    kind: Literal["question", "complaint"]
    certainty: float = Field(json_schema_extra={"x-tether-confidence": True})


class Marked(BaseModel):
    sentiment: Literal["positive", "negative", "neutral"]
    urgent: bool
    meta: Meta
    confidence: float  # the mark wins over the name
    summary: str


def test_confidence_by_mark_in_a_nested_object_and_enum_labels() -> None:
    schema = Marked.model_json_schema()
    output = {
        "sentiment": "negative",
        "urgent": True,
        "meta": {"kind": "complaint", "certainty": 0.8},
        "confidence": 0.1,
        "summary": "late delivery",
    }
    found = by_name(compute_signals(make_input(output=output, schema=schema, valid=True)))
    assert found["valid"].value == 1.0
    assert found["confidence"].value == 0.8
    assert found["enum:sentiment"].label == "negative"
    assert found["enum:urgent"].label == "true"
    assert found["enum:meta.kind"].label == "complaint"
    assert "enum:summary" not in found


def test_confidence_by_name_and_optional_enums() -> None:
    schema = {
        "type": "object",
        "properties": {
            "label": {"anyOf": [{"enum": ["spam", "ham"]}, {"type": "null"}]},
            "confidence": {"type": "number"},
        },
    }
    assert SchemaFields.of(schema).confidence == ("confidence",)
    signals = by_name(schema_signals(schema, {"label": None, "confidence": 0.5}))
    assert signals["confidence"].value == 0.5
    assert signals["enum:label"].label == "null"
    assert schema_signals(schema, {"confidence": "high"}) == []  # not a number, label absent


def test_a_nested_confidence_name_alone_is_not_the_confidence() -> None:
    schema = {
        "type": "object",
        "properties": {
            "inner": {"type": "object", "properties": {"confidence": {"type": "number"}}}
        },
    }
    assert SchemaFields.of(schema).confidence is None


def test_a_recursive_schema_is_walked_once() -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "kind": {"enum": ["leaf", "branch"]},
                    "child": {"$ref": "#/$defs/Node"},
                },
            }
        },
        "$ref": "#/$defs/Node",
    }
    assert SchemaFields.of(schema).enums == (("kind",),)


def test_an_enum_output_is_labelled_at_the_root() -> None:
    schema = {"enum": ["yes", "no"]}
    assert schema_signals(schema, "yes") == [Signal("enum:$", label="yes")]


REFUSAL = "I'm sorry, but I can't help with that request."
ANSWER = "Paris is the capital of France; it lies on the Seine in the north of the country."


def test_phrases_alone_tell_a_refusal_from_an_answer() -> None:
    assert pattern_score(REFUSAL) == 1.0
    assert pattern_score("As an AI, I don\u2019t have personal opinions.") >= 0.8
    assert pattern_score(ANSWER) == 0.0
    assert 0 < pattern_score("It depends on your budget.") < 1
    long_answer = "It depends. " + " ".join(["detail"] * 400)
    assert pattern_score(long_answer) < pattern_score("It depends.")  # a caveat, not a dodge


def test_similarity_to_generic_answers_adds_to_the_score() -> None:
    detector = EvasiveDetector(FakeEmbedder())
    assert detector.score("I am not sure about that.") > 0.5
    assert detector.score(ANSWER) < 0.2


@pytest.fixture(scope="module")
def minilm_detector() -> EvasiveDetector:
    from tether.observe.detectors import shared_embedder

    return EvasiveDetector(shared_embedder("minilm"))


def test_evasive_with_the_bundled_embedder(minilm_detector: EvasiveDetector) -> None:
    assert minilm_detector.score(REFUSAL) > 0.9
    assert minilm_detector.score("I don't have enough information to say.") > 0.5
    assert minilm_detector.score(ANSWER) < 0.1
    assert minilm_detector.score("def add(a, b):\n    return a + b") < 0.1


def test_a_failing_embedder_leaves_the_phrases() -> None:
    class Broken(FakeEmbedder):
        def embed(self, texts: Any) -> Any:
            raise RuntimeError("no model")

    detector = EvasiveDetector(Broken())
    assert detector.score(REFUSAL) == 1.0
    assert detector.similarity(ANSWER) is None


def test_diversity_falls_when_answers_repeat() -> None:
    window = DiversityWindow(4)
    varied = [
        "the quick brown fox jumps",
        "a lazy dog sleeps all day",
        "rain falls softly on green hills",
        "markets rose after the announcement",
    ]
    for text in varied:
        fresh = window.add(text)
    assert fresh.distinct_1 is not None
    assert fresh.distinct_2 is not None
    assert fresh.distinct_1 > 0.9
    assert fresh.distinct_2 == 1.0
    for _ in range(4):
        stale = window.add("I cannot answer that")
    assert stale.distinct_1 == pytest.approx(4 / 16)  # the window holds only the repeats now
    assert stale.distinct_2 == pytest.approx(3 / 12)
    assert stale.type_token_ratio == 1.0  # each answer is varied in itself
    recovered = window.add("bright new words entirely different")
    assert recovered.distinct_1 is not None
    assert recovered.distinct_1 > 4 / 16
