from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from tests.conftest import ROOT
from tether import Client, FakeProvider, Settings
from tether.errors import SpecError
from tether.evals.assertions import (
    SIMILAR_THRESHOLD,
    STORED_SPEC,
    Assertion,
    Judge,
    Outcome,
    Subject,
    evaluate,
    same,
    select,
)
from tether.evals.services import ClientServices
from tether.prompts.loader import parse_spec
from tether.settings import ModelSettings

ADAPTER: TypeAdapter[Any] = TypeAdapter(Assertion)
OUTPUT = {"sentiment": "negative", "confidence": 0.8, "themes": ["price", "support"], "n": 3}


class NoServices:
    def similarity(self, embedder: str, a: str, b: str) -> float:
        raise AssertionError("not expected")

    def judge(self, assertion: Judge, output: Any, inputs: Mapping[str, Any]) -> Outcome:
        raise AssertionError("not expected")


def check(spec: dict[str, Any], output: Any = OUTPUT, valid: bool = True) -> Outcome:
    subject = Subject(
        output=output,
        valid=valid,
        error="" if valid else "bad",
        inputs={"q": 1},
        check_folder=Path(__file__).parent,
    )
    return evaluate(ADAPTER.validate_python(spec), subject, NoServices())


@pytest.mark.parametrize(
    ("spec", "passed"),
    [
        ({"type": "schema_valid"}, True),
        ({"type": "equals", "field": "sentiment", "value": "negative"}, True),
        ({"type": "equals", "field": "sentiment", "value": "positive"}, False),
        ({"type": "in", "field": "sentiment", "values": ["negative", "neutral"]}, True),
        ({"type": "in", "field": "themes.0", "values": ["quality"]}, False),
        ({"type": "contains", "field": "themes", "value": "support"}, True),
        ({"type": "contains", "field": "themes", "value": "SUPPORT"}, False),
        (
            {"type": "contains", "field": "themes", "value": "SUPPORT", "case_sensitive": False},
            True,
        ),
        ({"type": "contains", "field": "sentiment", "value": "gat"}, True),
        ({"type": "contains", "field": "sentiment", "value": "GAT", "case_sensitive": False}, True),
        ({"type": "contains", "value": "themes"}, True),  # an object: its keys
        ({"type": "contains", "value": "THEMES", "case_sensitive": False}, True),
        ({"type": "contains", "value": "price"}, False),  # a value, not a key
        ({"type": "contains", "field": "n", "value": "3"}, False),  # a number holds nothing
        ({"type": "regex", "field": "sentiment", "pattern": "^neg"}, True),
        ({"type": "regex", "field": "sentiment", "pattern": "^pos"}, False),
        ({"type": "range", "field": "confidence", "min": 0.5, "max": 1}, True),
        ({"type": "range", "field": "confidence", "min": 0.9}, False),
        ({"type": "range", "field": "sentiment", "min": 0}, False),
        ({"type": "equals", "field": "missing", "value": 1}, False),
        ({"type": "python", "function": "checks:is_negative"}, True),
        ({"type": "python", "function": "checks:has_three_themes"}, False),
        ({"type": "python", "function": "checks:returns_false"}, False),
    ],
)
def test_assertion_kinds(spec: dict[str, Any], passed: bool) -> None:
    outcome = check(spec)
    assert outcome.passed is passed
    assert bool(outcome.detail) is not passed


@pytest.mark.parametrize(
    "function",
    [
        "os:system",
        "subprocess:getoutput",
        "tests.evals.checks:is_negative",
        "checks:no_such_function",
    ],
)
def test_python_checks_come_only_from_beside_the_spec(function: str) -> None:
    outcome = check({"type": "python", "function": function})
    assert not outcome.passed
    assert outcome.detail


def test_invalid_output_fails_everything_but_says_why() -> None:
    outcome = check({"type": "equals", "field": "n", "value": 3}, valid=False)
    assert not outcome.passed
    assert "no valid output" in outcome.detail
    assert not check({"type": "schema_valid"}, valid=False).passed


def test_select_paths() -> None:
    assert select(OUTPUT, "themes.1") == "support"
    assert select(OUTPUT, "themes.-1") == "support"
    assert select(OUTPUT, None) is OUTPUT


def test_judge_asks_the_named_model_for_reasons_before_the_verdict(settings: Any) -> None:
    judge_model = FakeProvider()
    judge_model.enqueue('{"reasons": ["it tells the user to leave"], "verdict": "fail"}')
    with Client(settings, providers={"fake": judge_model}) as client:
        services = ClientServices(client)
        subject = Subject(output="go away", valid=True, error="", inputs={"q": "help"})
        judge = {"type": "judge", "criteria": "is polite", "model": "fake"}
        outcome = evaluate(ADAPTER.validate_python(judge), subject, services)
    assert not outcome.passed
    assert "tells the user to leave" in outcome.detail
    call = judge_model.calls[0]
    prompt = call.messages[-1].content
    assert "is polite" in prompt
    assert "go away" in prompt
    assert prompt.index("reasons") < prompt.index("verdict")
    assert call.output is not None
    assert list(call.output.schema["properties"]) == ["reasons", "verdict"]


def test_a_stored_judge_without_a_model_loads_and_fails_saying_why(settings: Any) -> None:
    judge = TypeAdapter(Judge).validate_python(
        {"type": "judge", "criteria": "is polite"}, context=STORED_SPEC
    )
    judge_model = FakeProvider()
    with Client(settings, providers={"fake": judge_model}) as client:
        subject = Subject(output="hi", valid=True, error="", inputs={})
        outcome = evaluate(judge, subject, ClientServices(client))
        judge_model.enqueue('{"reasons": ["it greets"], "verdict": "pass"}')
        chosen = evaluate(judge, subject, ClientServices(client, judge_model="fake"))
    assert not outcome.passed
    assert "--judge-model" in outcome.detail
    assert chosen.passed
    assert len(judge_model.calls) == 1


@pytest.mark.parametrize("model", [None, "", "  "])
def test_judge_without_a_model_is_a_spec_error_naming_the_field(model: str | None) -> None:
    judge: dict[str, Any] = {"type": "judge", "criteria": "is polite"}
    if model is not None:
        judge["model"] = model
    with pytest.raises(ValidationError) as err:
        ADAPTER.validate_python(judge)
    (problem,) = err.value.errors()
    assert problem["loc"][-1] == "model"
    assert "needs `model`" in problem["msg"]


def test_judge_without_a_model_in_a_spec_file_names_file_line_and_field() -> None:
    spec = (ROOT / "prompts" / "feedback-sentiment" / "1.0.0.yaml").read_text()
    spec += (
        "  - name: polite\n"
        "    inputs: {comment: thanks}\n"
        "    assert:\n"
        "      - {type: judge, criteria: is polite}\n"
    )
    with pytest.raises(SpecError) as err:
        parse_spec(spec, source_name="judge.yaml")
    assert err.value.field.endswith("judge.model")
    assert err.value.line == spec.count("\n")
    assert "needs `model`" in str(err.value)


def test_similarity_uses_the_local_embedder(settings: Any) -> None:
    with Client(settings, providers={"fake": FakeProvider()}) as client:
        services = ClientServices(client)
        subject = Subject(
            output={"summary": "The delivery came two weeks late."},
            valid=True,
            error="",
            inputs={},
        )
        close = {
            "type": "similar",
            "field": "summary",
            "value": "The parcel arrived very late.",
            "threshold": 0.5,
        }
        far = {**close, "value": "I love the colour of the app."}
        assert evaluate(ADAPTER.validate_python(close), subject, services).passed
        outcome = evaluate(ADAPTER.validate_python(far), subject, services)
    assert not outcome.passed
    assert "similarity" in outcome.detail


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (True, 1, False),
        (False, 0, False),
        (1, 1.0, True),  # JSON has one number type
        (True, True, True),
        ("1", 1, False),
        (None, False, False),
        (None, None, True),
        ([1, True], [1.0, True], True),
        ([1, True], [1, 1], False),
        ([1, 2], [2, 1], False),
        ({"a": [1, {"b": True}]}, {"a": [1.0, {"b": True}]}, True),
        ({"a": [1, {"b": True}]}, {"a": [1, {"b": 1}]}, False),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([1], {"0": 1}, False),
    ],
)
def test_json_equality(a: Any, b: Any, equal: bool) -> None:
    assert same(a, b) is equal
    assert same(b, a) is equal


@pytest.mark.parametrize(
    ("spec", "output", "passed"),
    [
        ({"type": "equals", "value": True}, 1, False),
        ({"type": "equals", "value": 1}, True, False),
        ({"type": "equals", "value": 1}, 1.0, True),
        ({"type": "equals", "value": {"ok": True}}, {"ok": 1}, False),
        ({"type": "in", "values": [1, 2]}, True, False),
        ({"type": "in", "values": [0, 1]}, False, False),
        ({"type": "in", "values": [True, 2]}, 2.0, True),
        ({"type": "in", "values": [[1, True]]}, [1, 1], False),
        ({"type": "contains", "value": "price"}, ["overpriced", "support"], False),
        ({"type": "contains", "value": "price"}, ["support", "price"], True),
        ({"type": "contains", "value": "Price", "case_sensitive": False}, ["PRICE"], True),
        ({"type": "contains", "value": 1}, [True, 2], False),
        ({"type": "contains", "value": 1}, [1.0, 2], True),
        ({"type": "contains", "value": {"a": 1}}, [{"a": 1.0}], True),
        ({"type": "contains", "value": "price"}, "overpriced", True),
        ({"type": "contains", "value": 1}, "1", False),
    ],
)
def test_equals_in_and_contains_compare_json_values(
    spec: dict[str, Any], output: Any, passed: bool
) -> None:
    outcome = check(spec, output=output)
    assert outcome.passed is passed
    assert bool(outcome.detail) is not passed


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientServices]:
    """Services on the real MiniLM embedder, loaded once for this module."""
    settings = Settings(
        cache_dir=tmp_path_factory.mktemp("cache"),
        default_model="fake",
        models={"fake": ModelSettings(provider="fake")},
    )
    with Client(settings, providers={"fake": FakeProvider()}) as client:
        yield ClientServices(client)


def _similar(services: ClientServices, output: str, expected: str) -> Outcome:
    subject = Subject(output=output, valid=True, error="", inputs={})
    assertion = ADAPTER.validate_python({"type": "similar", "value": expected})
    return evaluate(assertion, subject, services)


def test_similar_defaults_to_the_calibrated_threshold() -> None:
    assertion = ADAPTER.validate_python({"type": "similar", "value": "x"})
    assert assertion.threshold == SIMILAR_THRESHOLD == 0.84


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("positive", "negative"),
        ("yes", "no"),
        ("good", "bad"),
        ("true", "false"),
        ("accept", "reject"),
        ("safe", "unsafe"),
    ],
)
def test_antonyms_are_not_similar_at_the_default(
    embeddings: ClientServices, output: str, expected: str
) -> None:
    outcome = _similar(embeddings, output, expected)
    assert not outcome.passed, outcome.detail
    assert _similar(embeddings, expected, output).passed is False


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("A man with a hard hat is dancing.", "A man wearing a hard hat is dancing."),
        ("A young child is riding a horse.", "A child is riding a horse."),
        ("How do I reset my password?", "How can I reset my password?"),
        ("I forgot my password, how can I change it?", "How do I reset my password?"),
        ("The customer wants a refund.", "The customer is asking for a refund."),
        ("The app crashes when I upload a photo.", "The app crashes whenever I upload a picture."),
    ],
)
def test_paraphrases_are_similar_at_the_default(
    embeddings: ClientServices, output: str, expected: str
) -> None:
    outcome = _similar(embeddings, output, expected)
    assert outcome.passed, outcome.detail
