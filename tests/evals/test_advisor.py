"""The model advisor: metered cost per case, the Pareto frontier, the recommendation, and
dataset files of cases."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tether import Client, FakeProvider, PriceSettings, Settings
from tether.errors import ConfigError
from tether.evals.advisor import (
    Advice,
    CaseRun,
    ModelScore,
    advise,
    pareto_frontier,
    percentile,
    recommend,
    score_model,
)
from tether.evals.assertions import Outcome
from tether.evals.case_file import read_cases, with_cases
from tether.evals.runner import AssertionResult, CaseResult
from tether.evals.services import ClientServices
from tether.messages import ProviderCall
from tether.prompts.loader import parse_spec
from tether.settings import ModelSettings

SPEC = """\
name: yes-no
version: 1.0.0
inputs: {type: object, properties: {q: {type: string, minLength: 1}}, required: [q]}
output:
  schema: {type: object, properties: {a: {enum: ["yes", "no"]}}, required: [a]}
messages:
  - {role: user, content: "{{ q }}"}
tests:
  - {name: one, inputs: {q: sky blue}, assert: [{type: equals, field: a, value: "yes"}]}
  - {name: two, inputs: {q: grass red}, assert: [{type: equals, field: a, value: "no"}]}
"""


def _score(model: str, passed: int, cases: int, cost: float, latency: float) -> ModelScore:
    def case(index: int) -> CaseRun:
        ok = index < passed
        result = CaseResult("p", "1.0.0", f"c{index}", model, None, "", "", latency,
                            (AssertionResult("equals", Outcome(ok, "")),))  # fmt: skip
        return CaseRun(result, cost, latency)

    return ModelScore(model, tuple(case(i) for i in range(cases)))


def test_frontier_drops_a_model_beaten_on_every_axis() -> None:
    scores = [
        _score("cheap", 7, 10, 0.001, 0.2),
        _score("premium", 10, 10, 0.01, 0.5),
        _score("worse", 9, 10, 0.02, 0.6),  # premium: better, cheaper, faster
        _score("fast", 9, 10, 0.02, 0.1),  # dearer and worse than premium, but the fastest
    ]
    assert pareto_frontier(scores) == {"cheap", "premium", "fast"}
    assert pareto_frontier(scores, latency=False) == {"cheap", "premium"}


def test_equal_models_do_not_knock_each_other_off() -> None:
    twins = [_score("a", 5, 10, 0.01, 0.3), _score("b", 5, 10, 0.01, 0.3)]
    assert pareto_frontier(twins) == {"a", "b"}


def test_recommendation_is_the_cheapest_meeting_the_threshold() -> None:
    scores = [
        _score("premium", 3, 3, 0.01, 0.5),
        _score("mid", 2, 3, 0.005, 0.5),
        _score("cheap", 1, 3, 0.001, 0.5),
    ]
    assert recommend(scores, 1.0) is scores[0]
    assert recommend(scores, 2 / 3) is scores[1]  # 2 of 3 meets a threshold of exactly 2/3
    assert recommend(scores, 0.0) is scores[2]
    assert recommend(scores[1:], 1.0) is None


def test_cost_ties_go_to_the_higher_pass_rate() -> None:
    free = [_score("a", 1, 2, 0.0, 0.1), _score("b", 2, 2, 0.0, 0.9)]
    assert recommend(free, 0.5) is free[1]


def test_threshold_outside_0_1_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        advise([], [], 1.5)


def test_percentile_interpolates() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)


@pytest.fixture
def priced(tmp_path: Path) -> Settings:
    return Settings(
        cache_dir=tmp_path / "cache",
        data_dir=tmp_path / "data",
        max_repairs=1,
        models={"m": ModelSettings(provider="fake", price=PriceSettings(input_per_million=1e6,
                                                                        output_per_million=2e6))},
    )  # fmt: skip


def test_a_case_costs_what_its_call_cost_failed_attempts_included(priced: Settings) -> None:
    # the fake counts words as tokens: one dollar per input word, two per output word
    compiled = parse_spec(SPEC, source_name="yes-no.yaml").compiled
    answers = ['{"a": "yes"}', "broken", "still broken"]
    fake = FakeProvider(answers)
    with Client(priced, providers={"m": fake}) as client:
        score = score_model(client, compiled, ClientServices(client), "m", warm_up=False)
    first, second = score.runs
    assert first.result.passed
    assert not second.result.passed
    assert len(fake.calls) == 3  # the second case: a first try and one repair, both paid
    dollars = [
        sum(len(m.content.split()) for m in call.messages) + 2 * len(answer.split())
        for call, answer in zip(fake.calls, answers, strict=True)
    ]
    assert first.cost_usd == pytest.approx(dollars[0])
    assert second.cost_usd == pytest.approx(dollars[1] + dollars[2])
    assert score.errors == 1
    assert score.mean_cost_usd == pytest.approx((first.cost_usd + second.cost_usd) / 2)


def test_the_warm_up_call_is_neither_timed_nor_charged(priced: Settings) -> None:
    compiled = parse_spec(SPEC, source_name="yes-no.yaml").compiled
    started: list[float] = []

    def slow_first(call: ProviderCall) -> str:
        if not started:  # a model's one-time start: only the first call pays it
            started.append(1.0)
            time.sleep(0.3)
        return '{"a": "yes"}'

    fake = FakeProvider(respond=slow_first)
    with Client(priced, providers={"m": fake}) as client:
        score = score_model(client, compiled, ClientServices(client), "m")
    assert len(fake.calls) == 3  # the warm-up, then the two cases
    assert score.p95_latency_s < 0.2
    one_case = [
        sum(len(m.content.split()) for m in call.messages) + 2 * 2 for call in fake.calls[1:]
    ]
    assert [run.cost_usd for run in score.runs] == pytest.approx(one_case)


def test_advice_keeps_the_skipped_models() -> None:
    advice = advise([_score("a", 1, 1, 0.1, 0.1)], [], 1.0)
    assert isinstance(advice, Advice)
    assert advice.recommended is not None
    assert advice.frontier == advice.cost_quality_frontier == {"a"}


# -- dataset files ---------------------------------------------------------------------------


def _write(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines))
    return path


def test_dataset_rows_become_equals_cases(tmp_path: Path) -> None:
    compiled = parse_spec(SPEC, source_name="yes-no.yaml").compiled
    path = _write(
        tmp_path,
        {"inputs": {"q": "snow white"}, "expected": {"a": "yes"}, "name": "snow"},
        "",
        {"inputs": {"q": "coal white"}, "expected": {"a": "no"}},
    )
    cases = read_cases(path, compiled)
    assert [c.name for c in cases] == ["snow", "line 3"]
    assert cases[1].asserts[0].model_dump() == {"type": "equals", "field": "a", "value": "no"}
    replaced = with_cases(compiled, cases)
    assert len(replaced.spec.tests) == 2
    assert compiled.spec.tests[0].name == "one"  # the original prompt keeps its own
    assert replaced.spec.tests[0].inputs == {"q": "snow white"}


def test_a_non_object_expectation_compares_the_whole_output(tmp_path: Path) -> None:
    compiled = parse_spec(SPEC, source_name="yes-no.yaml").compiled
    (case,) = read_cases(_write(tmp_path, {"inputs": {"q": "x"}, "expected": "yes"}), compiled)
    assert case.asserts[0].field is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not JSON"),
        ("[1, 2]", "line 1: not a JSON object"),
        ('{"inputs": {"q": "x"}}', "line 1: missing 'expected'"),
        ('{"inputs": {"q": "x"}, "expected": 1, "label": 2}', "unknown key(s) label"),
        ('{"inputs": ["x"], "expected": 1}', "line 1.inputs: not an object"),
        ('{"inputs": {"q": "x"}, "expected": {}}', "line 1.expected: an empty object"),
        ('{"inputs": {"q": "x"}, "expected": 1, "name": ""}', "line 1.name"),
        ('{"inputs": {"x": "q"}, "expected": 1}', "line 1.inputs: does not meet"),
    ],
)
def test_bad_dataset_lines_are_named(tmp_path: Path, line: str, message: str) -> None:
    compiled = parse_spec(SPEC, source_name="yes-no.yaml").compiled
    with pytest.raises(ConfigError) as caught:
        read_cases(_write(tmp_path, line), compiled)
    assert message in caught.value.message
    assert "cases.jsonl" in caught.value.message


def test_an_empty_or_missing_dataset_is_an_error(tmp_path: Path) -> None:
    compiled = parse_spec(SPEC, source_name="yes-no.yaml").compiled
    with pytest.raises(ConfigError, match="no cases"):
        read_cases(_write(tmp_path, "", "  "), compiled)
    with pytest.raises(ConfigError, match="cannot read"):
        read_cases(tmp_path / "absent.jsonl", compiled)
