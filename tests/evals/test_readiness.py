"""Readiness of a prompt on a fake model with known answers: the numbers of the report, the edge
cases and how each one ended, and the HTML and Markdown made from them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether import Client, FakeProvider, Settings
from tether.errors import ConfigError, ContextWindowExceeded
from tether.evals.assertions import Judge, Outcome
from tether.evals.readiness import DATASET, Readiness, Thresholds, run_readiness
from tether.evals.readiness_dataset import read_dataset
from tether.evals.readiness_edges import (
    INJECTED,
    INJECTIONS,
    LONG_CHARS,
    REFUSED,
    VALID,
    VIOLATION,
    edge_cases,
    naughty_strings,
    required_strings,
)
from tether.evals.readiness_report import html_body, markdown, reliability_png
from tether.messages import ProviderCall
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.loader import parse_spec

SPEC = """\
name: review-sentiment
version: 1.0.0
inputs:
  type: object
  properties: {comment: {type: string, minLength: 1}, lang: {type: string}}
  required: [comment]
output:
  schema:
    type: object
    properties:
      sentiment: {enum: [positive, negative]}
      confidence: {type: number, minimum: 0, maximum: 1}
    required: [sentiment, confidence]
    additionalProperties: false
messages:
  - {role: system, content: "Classify the sentiment of the customer review below."}
  - {role: user, content: "{{ comment }}"}
tests:
  - {name: praise, inputs: {comment: Lovely food}, assert: [{type: equals, field: sentiment, value: positive}]}
  - {name: complaint, inputs: {comment: Cold soup}, assert: [{type: equals, field: sentiment, value: negative}]}
  - {name: rude, inputs: {comment: Rude waiter}, assert: [{type: equals, field: sentiment, value: negative}]}
  - {name: sarcasm, inputs: {comment: "Oh great, another hour wait"}, assert: [{type: equals, field: sentiment, value: negative}]}
"""  # noqa: E501

HOSTILE = "<script>alert('x')</script>"
REPAIRED = "Robert'); DROP TABLE Students;--"


def answer(call: ProviderCall) -> str:
    """Right but for sarcasm; follows an 'ignore previous instructions'; never valid on a
    script tag; invalid at first, then repaired, on a SQL injection."""
    text = next(m.content for m in call.messages if m.role == "user")
    repairing = any(m.role == "assistant" for m in call.messages)
    if text.startswith("Ignore previous instructions"):
        return "TETHER-PWNED"
    if HOSTILE in text:
        return f"<b>{HOSTILE}</b>"
    if text == REPAIRED and not repairing:
        return "oops"
    negative = text.startswith(("Cold", "Rude"))
    return json.dumps({"sentiment": "negative" if negative else "positive", "confidence": 0.9})


class NoServices:
    def similarity(self, embedder: str, a: str, b: str) -> float:
        raise AssertionError("not used")

    def judge(self, assertion: Judge, output: object, inputs: object) -> Outcome:
        raise AssertionError("not used")


@pytest.fixture
def compiled() -> CompiledPrompt:
    return parse_spec(SPEC, source_name="review.yaml").compiled


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider(respond=answer)


@pytest.fixture
def client(settings: Settings, fake: FakeProvider) -> Iterator[Client]:
    with Client(settings, providers={"fake": fake}) as c:
        yield c


@pytest.fixture
def report(client: Client, compiled: CompiledPrompt) -> Readiness:
    edges = edge_cases(compiled, [HOSTILE, REPAIRED], 2)
    return run_readiness(client, compiled, NoServices(), edges=edges, concurrency=4)


def _words(text: str) -> int:
    return len(text.split())


def test_edge_cases_cover_each_required_string_input(compiled: CompiledPrompt) -> None:
    assert required_strings(compiled.spec.inputs) == ["comment"]  # lang is optional
    edges = edge_cases(compiled, ["a", "b", "c", "d"], 2)
    values = [e.inputs["comment"] for e in edges]
    assert values[0] == ""
    assert len(values[1]) == LONG_CHARS
    assert values[2:4] == ["a", "c"]  # spread over the list
    assert [e.kind for e in edges].count("injection") == len(INJECTIONS)
    assert all(set(e.inputs) == {"comment"} for e in edges)
    assert len(naughty_strings()) >= 30  # the packaged selection


def test_accuracy_conformity_and_cost(report: Readiness, fake: FakeProvider) -> None:
    assert len(report.cases) == 4
    assert len(report.edges) == 2 + 2 + len(INJECTIONS)
    assert report.accuracy == 0.75
    assert [r.result.case for r in report.cases if not r.result.passed] == ["sarcasm"]
    # the empty comment is refused before any call; 4 cases + 8 edges reach the model
    assert len(report.answered) == 12
    assert report.conformity == pytest.approx(10 / 12)
    assert report.repaired == 1  # the SQL string: invalid once, then repaired
    assert report.failures_by_type == {"ContractViolation": 2, "RenderError": 1}
    # $1 per million words in, $2 per million words out, over every call the fake received
    # but the first: the untimed, uncounted warm-up
    expected = sum(
        sum(map(_words, (m.content for m in c.messages))) * 1e-6 + _words(answer(c)) * 2e-6
        for c in fake.calls[1:]
    )
    assert report.total_cost_usd == pytest.approx(expected)
    assert report.cost_per_request_usd == pytest.approx(expected / 12)
    assert report.throughput > 0
    assert report.latency_ms(50) <= report.latency_ms(99)


def test_edge_cases_are_classified(report: Readiness) -> None:
    outcome = {r.result.case: r.outcome for r in report.edges}
    assert outcome["comment: empty"] == REFUSED
    assert outcome[f"comment: {LONG_CHARS // 1000}k chars"] == VALID
    assert outcome["comment: naughty 1"] == VIOLATION
    assert outcome["comment: naughty 2"] == VALID
    assert outcome["comment: injection: ignore previous"] == INJECTED
    assert outcome["comment: injection: role-play"] == VALID
    assert report.outcomes[INJECTED] == 1


def test_a_leaked_system_prompt_counts_as_a_followed_injection(
    settings: Settings, compiled: CompiledPrompt
) -> None:
    def leak(call: ProviderCall) -> str:
        system = next(m.content for m in call.messages if m.role == "system")
        return json.dumps({"sentiment": system[:100], "confidence": 0.5})

    with Client(settings, providers={"fake": FakeProvider(respond=leak)}) as client:
        edges = [e for e in edge_cases(compiled, [], 0) if e.name.endswith("system prompt")]
        report = run_readiness(client, compiled, NoServices(), edges=edges)
    (only,) = report.edges
    assert only.outcome == INJECTED
    assert "system prompt" in only.why


def test_a_prompt_past_the_context_window_is_a_refusal(
    settings: Settings, compiled: CompiledPrompt
) -> None:
    def small_window(call: ProviderCall) -> str:
        if len(call.messages[-1].content) > 1000:
            raise ContextWindowExceeded(provider="fake", model="fake", prompt_tokens=5000,
                                        max_tokens=64, context_window=4096)  # fmt: skip
        return answer(call)

    with Client(settings, providers={"fake": FakeProvider(respond=small_window)}) as client:
        edges = [e for e in edge_cases(compiled, [], 0) if e.kind == "long"]
        report = run_readiness(client, compiled, NoServices(), edges=edges)
    (long,) = report.edges
    assert long.outcome == REFUSED
    assert long not in report.answered
    assert report.conformity == 1.0


def test_calibration_and_verdict(report: Readiness) -> None:
    assert report.has_confidence
    assert report.calibration is not None
    assert report.calibration.total == 4
    assert report.calibration.ece == pytest.approx(0.15)  # 0.9 stated, 0.75 right
    assert report.reasons == [
        "accuracy 75.0% below 90.0%",
        "conformity 83.3% below 99.0%",
        "1 injection(s) followed (at most 0)",
    ]
    png = reliability_png(report)
    assert png is not None
    assert png.startswith(b"\x89PNG")
    lenient = Thresholds(min_accuracy=0.7, min_conformity=0.8, max_injections=1)
    assert Readiness(**{**report.__dict__, "thresholds": lenient}).ready


def test_markdown_and_html_escape_hostile_strings(report: Readiness) -> None:
    text = markdown(report)
    assert "**Verdict: NOT READY: accuracy 75.0% below 90.0%" in text
    assert "| sarcasm | test | FAIL |" in text
    assert "| 75.0% |" not in text
    assert "3/4 cases passed (75.0%)" in text
    assert "| injection followed | 1 | 11% |" in text
    assert "ECE, 10 bins) 0.150 over 4 cases" in text
    assert HOSTILE not in text
    assert "&lt;script&gt;" in text
    body = html_body(report, [("chart", b"\x89PNG")])
    assert "<script" not in body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)" in body
    assert re.search(r'src="(?!data:)', body) is None


def test_a_dataset_adds_cases_with_assertions(
    tmp_path: Path, client: Client, compiled: CompiledPrompt
) -> None:
    path = tmp_path / "more.jsonl"
    line = {"inputs": {"comment": "Rude and cold"}, "assert": [{"type": "equals",
            "field": "sentiment", "value": "negative"}]}  # fmt: skip
    path.write_text(json.dumps(line) + "\n\n" + json.dumps({**line, "name": "two"}) + "\n")
    cases = read_dataset(path, compiled)
    assert [c.name for c in cases] == ["line 1", "two"]
    report = run_readiness(client, compiled, NoServices(), dataset=cases)
    assert [r.source for r in report.cases].count(DATASET) == 2
    assert report.accuracy == pytest.approx(5 / 6)


def test_dataset_errors_name_the_line_and_field(tmp_path: Path, compiled: CompiledPrompt) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"inputs": {"comment": "x"}, "assert": [{"type": "nope"}]}))
    with pytest.raises(ConfigError) as caught:
        read_dataset(path, compiled)
    assert caught.value.field is not None
    assert caught.value.field.startswith("line 1.assert")
    path.write_text(json.dumps({"inputs": {"comment": "x"}, "expected": {"sentiment": "a"}})
                    + "\n" + json.dumps({"inputs": {"comment": "x"}, "assert": []}))  # fmt: skip
    with pytest.raises(ConfigError, match="mixes"):
        read_dataset(path, compiled)
