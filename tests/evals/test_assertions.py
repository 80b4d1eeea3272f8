from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import TypeAdapter

from tether import Client, FakeProvider
from tether.evals.assertions import Assertion, Judge, Outcome, Subject, evaluate, select
from tether.evals.services import ClientServices

ADAPTER: TypeAdapter[Any] = TypeAdapter(Assertion)
OUTPUT = {"sentiment": "negative", "confidence": 0.8, "themes": ["price", "support"], "n": 3}


class NoServices:
    def similarity(self, embedder: str, a: str, b: str) -> float:
        raise AssertionError("not expected")

    def judge(self, assertion: Judge, output: Any, inputs: Mapping[str, Any]) -> Outcome:
        raise AssertionError("not expected")


def check(spec: dict[str, Any], output: Any = OUTPUT, valid: bool = True) -> Outcome:
    subject = Subject(output=output, valid=valid, error="" if valid else "bad", inputs={"q": 1})
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
        ({"type": "contains", "value": "PRICE", "case_sensitive": False}, True),
        ({"type": "contains", "value": "PRICE"}, False),
        ({"type": "regex", "field": "sentiment", "pattern": "^neg"}, True),
        ({"type": "regex", "field": "sentiment", "pattern": "^pos"}, False),
        ({"type": "range", "field": "confidence", "min": 0.5, "max": 1}, True),
        ({"type": "range", "field": "confidence", "min": 0.9}, False),
        ({"type": "range", "field": "sentiment", "min": 0}, False),
        ({"type": "equals", "field": "missing", "value": 1}, False),
        ({"type": "python", "function": "tests.evals.checks:is_negative"}, True),
        ({"type": "python", "function": "tests.evals.checks:has_three_themes"}, False),
        ({"type": "python", "function": "tests.evals.checks:returns_false"}, False),
    ],
)
def test_assertion_kinds(spec: dict[str, Any], passed: bool) -> None:
    outcome = check(spec)
    assert outcome.passed is passed
    assert bool(outcome.detail) is not passed


def test_invalid_output_fails_everything_but_says_why() -> None:
    outcome = check({"type": "equals", "field": "n", "value": 3}, valid=False)
    assert not outcome.passed
    assert "no valid output" in outcome.detail
    assert not check({"type": "schema_valid"}, valid=False).passed


def test_select_paths() -> None:
    assert select(OUTPUT, "themes.1") == "support"
    assert select(OUTPUT, "themes.-1") == "support"
    assert select(OUTPUT, None) is OUTPUT


def test_judge_asks_the_judge_model(settings: Any) -> None:
    judge_model = FakeProvider()
    judge_model.enqueue('{"verdict": "fail", "reason": "too rude"}')
    with Client(settings, providers={"fake": judge_model}) as client:
        services = ClientServices(client)
        subject = Subject(output="go away", valid=True, error="", inputs={"q": "help"})
        outcome = evaluate(
            ADAPTER.validate_python({"type": "judge", "criteria": "is polite"}), subject, services
        )
    assert not outcome.passed
    assert "too rude" in outcome.detail
    prompt = judge_model.calls[0].messages[-1].content
    assert "is polite" in prompt
    assert "go away" in prompt


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
