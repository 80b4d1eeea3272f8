"""Cost breakdowns from the request log, the same on SQLite and PostgreSQL: grouping by each
dimension and by pairs, the time range's edges, failed requests' share, totals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from tether.observe.request_log import RequestRecord
from tether.store import open_database
from tether.store.costs import cost_breakdown, daily_costs
from tether.store.tables import api_keys, requests

NOON = datetime(2026, 3, 10, 12, tzinfo=UTC)


def record(
    id: str,
    at: datetime,
    *,
    cost: float,
    model: str = "fast",
    upstream: str | None = "gpt-4o-mini",
    prompt: str | None = None,
    version: str | None = None,
    key: str | None = None,
    status: int = 200,
    tokens: tuple[int, int] = (10, 5),
    endpoint: str = "chat.completions",
) -> RequestRecord:
    return RequestRecord(
        id=id, at=at, endpoint=endpoint, key_id=key, model=model, provider="openai",
        upstream_model=upstream, prompt=prompt, prompt_version=version, status=status,
        error=None, stream=False, messages=json.dumps([]), response=None, output=None,
        contract=None, valid=None, attempts=None, input_tokens=tokens[0],
        output_tokens=tokens[1], cost_usd=cost, latency_ms=1.0,
    )  # fmt: skip


ROWS = [
    record("a", NOON, cost=0.5, prompt="triage", version="1.0.0", key="key_1"),
    record("b", NOON, cost=0.25, prompt="triage", version="1.1.0", key="key_1"),
    # failed after a billed attempt on another model
    record(
        "c",
        NOON,
        cost=1.0,
        upstream="claude-sonnet-4-5",
        prompt="triage",
        version="1.1.0",
        key="key_2",
        status=502,
        tokens=(100, 0),
    ),
    # unknown model: nothing answered, nothing billed
    record("d", NOON, cost=0.0, model="nope", upstream=None, status=404, tokens=(0, 0)),
    # yesterday, just before midnight UTC
    record("e", datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC), cost=2.0, key="key_2"),
    # outside the range
    record("f", NOON - timedelta(days=30), cost=100.0),
    # feedback reaches no model
    record("g", NOON, cost=0.0, endpoint="feedback", upstream=None, model=None),
]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    found = open_database(database_url)
    with found.begin() as conn:
        conn.execute(sa.insert(requests), [r.row() for r in ROWS])
        conn.execute(
            sa.insert(api_keys),
            [
                {
                    "id": "key_1",
                    "name": "billing <team>",
                    "secret_hash": "0" * 64,
                    "prefix": "tk_1",
                    "models": "[]",
                    "prompts": "[]",
                    "created_at": NOON,
                }
            ],
        )
    try:
        yield found
    finally:
        found.dispose()


SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 3, 11, tzinfo=UTC)


def by(engine: sa.Engine, *dimensions: str) -> dict[tuple[str | None, ...], tuple[int, float]]:
    report = cost_breakdown(engine, dimensions, SINCE, UNTIL)  # type: ignore[arg-type]
    return {r.group: (r.requests, r.cost_usd) for r in report.rows}


def test_totals_over_the_range(engine: sa.Engine) -> None:
    total = cost_breakdown(engine, [], SINCE, UNTIL).total
    assert (total.requests, total.failed) == (5, 2)
    assert total.cost_usd == pytest.approx(3.75)
    assert total.failed_cost_usd == pytest.approx(1.0)
    assert total.failed_cost_share == pytest.approx(1.0 / 3.75)
    assert (total.input_tokens, total.output_tokens) == (130, 15)


def test_group_by_model_uses_the_model_that_answered(engine: sa.Engine) -> None:
    assert by(engine, "model") == {
        ("gpt-4o-mini",): (3, pytest.approx(2.75)),
        ("claude-sonnet-4-5",): (1, pytest.approx(1.0)),
        ("nope",): (1, 0.0),  # nothing answered: the requested name
    }
    rows = cost_breakdown(engine, ["model"], SINCE, UNTIL).rows
    assert [r.group[0] for r in rows] == ["gpt-4o-mini", "claude-sonnet-4-5", "nope"]  # by cost


def test_group_by_prompt_and_version(engine: sa.Engine) -> None:
    assert by(engine, "prompt") == {
        ("triage",): (3, pytest.approx(1.75)),
        (None,): (2, pytest.approx(2.0)),
    }
    assert by(engine, "version") == {
        ("triage@1.0.0",): (1, pytest.approx(0.5)),
        ("triage@1.1.0",): (2, pytest.approx(1.25)),
        (None,): (2, pytest.approx(2.0)),
    }


def test_group_by_key_names_known_keys(engine: sa.Engine) -> None:
    assert by(engine, "key") == {
        ("key_1 (billing <team>)",): (2, pytest.approx(0.75)),
        ("key_2",): (2, pytest.approx(3.0)),  # a deleted key keeps its id
        (None,): (1, 0.0),
    }


def test_group_by_day_is_the_utc_day_in_order(engine: sa.Engine) -> None:
    rows = cost_breakdown(engine, ["day"], SINCE, UNTIL).rows
    assert [(r.group, r.requests) for r in rows] == [(("2026-03-09",), 1), (("2026-03-10",), 4)]


def test_two_dimensions(engine: sa.Engine) -> None:
    assert by(engine, "day", "model") == {
        ("2026-03-09", "gpt-4o-mini"): (1, pytest.approx(2.0)),
        ("2026-03-10", "gpt-4o-mini"): (2, pytest.approx(0.75)),
        ("2026-03-10", "claude-sonnet-4-5"): (1, pytest.approx(1.0)),
        ("2026-03-10", "nope"): (1, 0.0),
    }
    failed = {
        r.group: r.failed_cost_share
        for r in cost_breakdown(engine, ["prompt", "model"], SINCE, UNTIL).rows
    }
    assert failed[("triage", "claude-sonnet-4-5")] == 1.0
    assert failed[("triage", "gpt-4o-mini")] == 0.0
    assert failed[(None, "nope")] is None  # nothing spent: no share


def test_range_is_half_open(engine: sa.Engine) -> None:
    just_after = datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC)
    assert cost_breakdown(engine, [], until=just_after).total.requests == 1  # only "f"
    assert cost_breakdown(engine, [], since=just_after, until=NOON).total.requests == 1  # "e"
    assert cost_breakdown(engine, []).total.requests == 6  # everything but feedback
    naive = datetime(2026, 3, 10)  # read as UTC
    assert cost_breakdown(engine, [], since=naive).total.requests == 4


def test_empty_range_has_no_rows_and_zero_totals(engine: sa.Engine) -> None:
    report = cost_breakdown(engine, ["model"], since=datetime(2030, 1, 1, tzinfo=UTC))
    assert report.rows == []
    assert report.total.requests == 0
    assert report.total.failed_cost_share is None
    assert cost_breakdown(engine, [], since=datetime(2030, 1, 1, tzinfo=UTC)).rows == []


def test_daily_costs_fill_missing_days(engine: sa.Engine) -> None:
    days = daily_costs(engine, datetime(2026, 3, 8, tzinfo=UTC), UNTIL)
    assert days == [
        (date(2026, 3, 8), 0.0),
        (date(2026, 3, 9), pytest.approx(2.0)),
        (date(2026, 3, 10), pytest.approx(1.75)),
    ]
    # a range that starts mid-day counts only that part of its first day
    late = daily_costs(engine, NOON + timedelta(minutes=1), NOON + timedelta(days=1))
    assert late == [(date(2026, 3, 10), 0.0), (date(2026, 3, 11), 0.0)]


def test_unknown_dimension_is_refused(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="unknown dimension 'tenant'"):
        cost_breakdown(engine, ["tenant"])  # type: ignore[list-item]
