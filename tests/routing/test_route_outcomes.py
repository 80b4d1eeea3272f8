"""Training rows from the request log and feedback, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from tests.conftest import fresh_postgres
from tether.cli import app
from tether.routing.learned.from_log import pair_outcomes
from tether.store.engine import open_database
from tether.store.route_outcomes import logged_outcomes
from tether.store.tables import feedback, requests

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
        engine = open_database(url)
        yield engine
        engine.dispose()
        return
    with fresh_postgres() as url:
        engine = open_database(url)
        yield engine
        engine.dispose()


def log(
    engine: Engine,
    rid: str,
    model: str,
    text: str,
    *,
    minutes: int = 0,
    answered_by: str | None = None,
    verdicts: tuple[tuple[float | None, str | None], ...] = (),
) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    at = START + timedelta(minutes=minutes)
    with engine.begin() as conn:
        conn.execute(
            insert(requests).values(
                id=rid, at=at, endpoint="chat", model=model, status=200, stream=False,
                messages=json.dumps(messages), input_tokens=1, output_tokens=1, cost_usd=0.0,
                latency_ms=1.0,
                route=json.dumps({"answered_by": answered_by}) if answered_by else None,
            )
        )  # fmt: skip
        for index, (score, label) in enumerate(verdicts):
            conn.execute(
                insert(feedback).values(
                    request_id=rid, score=score, label=label,
                    at=at + timedelta(seconds=index + 1),
                )
            )  # fmt: skip


def test_outcomes_follow_feedback_and_the_answering_model(engine: Engine) -> None:
    log(engine, "r1", "small", "2+2?", verdicts=((1.0, None),))
    log(engine, "r2", "router:x", "2+2?", answered_by="large", verdicts=((None, "Good"),))
    log(engine, "r3", "small", "capital of France?", verdicts=((0.9, None), (0.0, None)))
    log(engine, "r4", "small", "no verdict", verdicts=((None, "meh"),))
    log(engine, "r5", "other", "not ours", verdicts=((1.0, None),))
    log(engine, "r6", "small", "no feedback at all")
    found = {o.request_id: o for o in logged_outcomes(engine, ["small", "large"])}
    assert set(found) == {"r1", "r2", "r3"}
    assert found["r2"].model == "large"  # the fallback that answered, not the router name
    assert found["r2"].text == "2+2?"  # the user's text only, as the route stage reads it
    assert found["r3"].passed is False  # the latest verdict wins
    assert found["r1"].passed is True
    later = logged_outcomes(engine, ["small", "large"], since=START + timedelta(seconds=30))
    assert later == []


def test_only_texts_both_models_answered_become_rows(engine: Engine) -> None:
    for i in range(12):
        text = f"question {i}"
        log(engine, f"c{i}", "small", text, minutes=i, verdicts=((float(i % 2), None),))
        if i < 10:
            log(engine, f"p{i}", "large", text, minutes=i, verdicts=((1.0, None),))
    paired = pair_outcomes(logged_outcomes(engine, ["small", "large"]), cheap="small",
                           premium="large")  # fmt: skip
    assert len(paired.outcomes) == 10
    assert paired.one_model_only == 2
    by_text = {r.text: r for r in paired.outcomes.rows}
    assert by_text["question 3"].cheap_correct is True
    assert by_text["question 4"].cheap_correct is False
    assert all(r.premium_correct for r in paired.outcomes.rows)


def test_train_from_the_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = open_database(url)
    for i in range(40):
        text = ("prove the theorem " if i % 2 else "say hello ") + str(i)
        log(engine, f"c{i}", "small", text, verdicts=((0.0 if i % 2 else 1.0, None),))
        log(engine, f"p{i}", "large", text, verdicts=((1.0, None),))
    engine.dispose()
    config = tmp_path / "tether.toml"
    config.write_text(
        f'database_url = "{url}"\n[models.small]\nprovider = "fake"\n'
        '[models.large]\nprovider = "fake"\n'
    )
    out = tmp_path / "r.npz"
    result = CliRunner().invoke(
        app,
        ["route", "train", "--from-log", "--cheap", "small", "--premium", "large", "--out",
         str(out), "--embedder", "fake", "--folds", "3", "--config", str(config)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "40 texts answered by both models" in result.output
    assert out.is_file()
