"""Evaluators on production traffic: a prompt's checks run on logged requests made by a real
client, a judge graded through the client, groundedness of an answer against its prompt,
deterministic sampling, failures queued for review, and each request evaluated once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, select

from tests.prompts.specs import spec
from tether import Client, FakeProvider, ModelSettings, Settings
from tether.errors import TetherError
from tether.evals.production import (
    EvaluationSettings,
    RequestEvaluation,
    evaluate_logged,
    evaluations_of,
    in_sample,
)
from tether.messages import ProviderCall
from tether.store import open_database
from tether.store.reviews import queued
from tether.store.tables import evaluations, requests

TICKETS = [
    ("the app crashes when I upload a photo", '{"queue": "tech", "urgent": true, '
     '"summary": "The app crashes when uploading a photo."}'),
    ("I was charged twice this month", '{"queue": "billing", "urgent": false, '
     '"summary": "The customer was charged twice this month. They want a refund of 500 dollars."}'),
    ("do you sell team plans?", '{"queue": "sales", "urgent": false, '
     '"summary": "The customer asks about team plans."}'),
    ("login page is blank", '{"queue": "tech", "urgent": true, '
     '"summary": "The login page is blank."}'),
]  # fmt: skip


def _judge(call: ProviderCall) -> str:
    """Passes an output routed to tech, fails the rest."""
    passed = '\\"queue\\": \\"tech\\"' in call.messages[-1].content or (
        '"queue": "tech"' in call.messages[-1].content
    )
    verdict = "pass" if passed else "fail"
    return json.dumps({"reasons": [f"graded {verdict}"], "verdict": verdict})


@pytest.fixture
def logged(settings: Settings) -> Settings:
    """Settings with a `judge` model, and a `ticket` prompt that has served TICKETS."""
    models = {**settings.models, "judge": ModelSettings(provider="fake", max_retries=0)}
    configured = settings.model_copy(update={"models": models})
    fake = FakeProvider()
    with Client(configured, providers={"fake": fake}) as client:
        client.registry.push(spec(), source="", author="a", message="")
        client.registry.set_label("ticket", "production", "1.0.0", actor="a", reason="")
        for text, answer in TICKETS:
            fake.enqueue(answer)
            client.run("ticket", {"text": text})
    return configured


@pytest.fixture
def judge() -> FakeProvider:
    return FakeProvider(respond=_judge)


@pytest.fixture
def client(logged: Settings, judge: FakeProvider) -> Iterator[Client]:
    with Client(logged, providers={"judge": judge}) as found:
        yield found


@pytest.fixture
def engine(logged: Settings) -> Iterator[Engine]:
    found = open_database(logged.database)
    yield found
    found.dispose()


def entry(*asserts: dict[str, Any], sample: float = 1.0, review: float = 0.0) -> EvaluationSettings:
    return EvaluationSettings.model_validate(
        {"prompt": "ticket", "sample": sample, "review_sample": review, "asserts": list(asserts)}
    )


IN_QUEUES = {"type": "in", "field": "queue", "values": ["tech", "billing"]}
JUDGE = {"type": "judge", "criteria": "routed to tech", "model": "judge"}


def test_rule_and_judge_evaluators_on_logged_requests(
    client: Client, engine: Engine, judge: FakeProvider
) -> None:
    seen: list[RequestEvaluation] = []
    [summary] = evaluate_logged(engine, client, [entry(IN_QUEUES, JUDGE)], on_request=seen.append)
    assert (summary.prompt, summary.evaluated, summary.passed, summary.failed) == (
        "ticket",
        4,
        2,
        2,
    )
    assert summary.by_evaluator == {"in queue": [3, 4], "judge": [2, 4]}
    assert len(judge.calls) == 4  # one grade per request, through the client
    assert [r.request.output["queue"] for r in seen] == ["tech", "billing", "sales", "tech"]

    with engine.connect() as conn:
        rows = conn.execute(select(evaluations).order_by(evaluations.c.id)).all()
    assert len(rows) == 8
    sales = [r for r in rows if r.request_id == seen[2].request.id]
    assert [(r.evaluator, r.passed) for r in sales] == [("in queue", False), ("judge", False)]
    assert "not in" in sales[0].reason
    assert sales[1].reason == "judge: graded fail"

    # failures queued for review, failed first; with review_sample 0 no passing one is
    assert summary.queued == 2
    queue = queued(engine)
    assert [q.request.id for q in queue] == [seen[1].request.id, seen[2].request.id]
    assert queue[1].reason == "failed: in queue, judge"
    assert queue[0].reason == "failed: judge"

    # a request is evaluated once
    [again] = evaluate_logged(engine, client, [entry(IN_QUEUES, JUDGE)])
    assert again.evaluated == 0
    assert len(judge.calls) == 4


def test_groundedness_of_the_summary_against_the_prompt(client: Client, engine: Engine) -> None:
    check = {"type": "groundedness", "field": "summary", "context": "user", "min_score": 1.0}
    seen: list[RequestEvaluation] = []
    evaluate_logged(engine, client, [entry(check)], on_request=seen.append)
    by_text = {r.request.messages[-1]["content"]: r.rows[0] for r in seen}
    assert by_text["the app crashes when I upload a photo"].passed is True
    charged = by_text["I was charged twice this month"]
    assert charged.passed is False
    assert charged.score == pytest.approx(0.5)
    assert charged.reason == (
        "1 of 2 claims supported; unsupported: They want a refund of 500 dollars."
    )


def test_sampling_is_decided_by_request_id(client: Client, engine: Engine) -> None:
    ids = [f"req_{i:05d}" for i in range(4000)]
    share = sum(in_sample(i, 0.25) for i in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert [in_sample(i, 0.25) for i in ids] == [in_sample(i, 0.25) for i in ids]
    assert all(in_sample(i, 1.0) for i in ids[:10])
    assert not any(in_sample(i, 0) for i in ids)
    review = [in_sample(i, 0.25, salt="review") for i in ids]
    assert review != [in_sample(i, 0.25) for i in ids]  # an independent sample

    seen: list[RequestEvaluation] = []
    evaluate_logged(engine, client, [entry(IN_QUEUES, sample=0.5)], on_request=seen.append)
    with engine.connect() as conn:
        logged = list(conn.execute(select(requests.c.id).where(requests.c.prompt == "ticket")))
    expected = sorted(r.id for r in logged if in_sample(r.id, 0.5))
    assert sorted(r.request.id for r in seen) == expected


def test_limit_and_review_sample(client: Client, engine: Engine) -> None:
    [first] = evaluate_logged(engine, client, [entry(IN_QUEUES, review=1.0)], limit=3)
    assert first.evaluated == 3
    assert first.queued == 3  # every request: the failure and a sample of 1.0 of the rest
    reasons = sorted(q.reason for q in queued(engine))
    assert reasons == ["failed: in queue", "sampled", "sampled"]
    [rest] = evaluate_logged(engine, client, [entry(IN_QUEUES)], limit=3)
    assert rest.evaluated == 1


def test_settings_and_errors(client: Client, engine: Engine) -> None:
    with pytest.raises(TetherError, match="no \\[\\[evaluations\\]\\] entry for prompt 'nope'"):
        evaluate_logged(engine, client, [entry(IN_QUEUES)], prompt="nope")
    with pytest.raises(ValidationError, match="asserts"):
        EvaluationSettings.model_validate({"prompt": "ticket"})
    with pytest.raises(ValidationError, match="sample"):
        EvaluationSettings.model_validate({"prompt": "t", "sample": 2, "asserts": [IN_QUEUES]})
    with pytest.raises(ValidationError, match="needs `model`"):
        EvaluationSettings.model_validate(
            {"prompt": "t", "asserts": [{"type": "judge", "criteria": "c"}]}
        )
    assert evaluations_of(client.settings) == []  # settings without [[evaluations]]
    parsed = EvaluationSettings.model_validate({"prompt": "t", "asserts": [IN_QUEUES]})
    assert parsed.sample == 0.1
