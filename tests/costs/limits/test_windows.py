"""The database store's weighted minute and the period buckets, at their edges."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tether.costs.limits import windows
from tether.costs.limits.periods import bucket, period_end


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_the_previous_minute_fades_out_across_the_current_one() -> None:
    start = windows.Moment.at(at("2026-12-01T10:00:00"))
    middle = windows.Moment.at(at("2026-12-01T10:00:30"))
    assert (start.previous_weight, middle.previous_weight) == (1.0, 0.5)
    assert windows.used(current=2, previous=10, moment=middle) == 7.0


def test_retry_after_waits_for_the_previous_minute_to_fade() -> None:
    moment = windows.Moment.at(at("2026-12-01T10:00:15"))
    # 10 + 0.75 * 40 = 40 used of 40: room for 1 once 40 * w <= 29, i.e. at 16.5 s.
    wait = windows.retry_after(10, 40, moment, asked=1, limit=40)
    assert wait == pytest.approx(16.5 - 15)
    later = windows.Moment.at(at("2026-12-01T10:00:16.5"))
    assert windows.used(10, 40, later) + 1 <= 40


def test_retry_after_a_full_current_minute_runs_into_the_next() -> None:
    moment = windows.Moment.at(at("2026-12-01T10:00:40"))
    wait = windows.retry_after(40, 0, moment, asked=1, limit=40)
    # 20 s to the boundary, then 40 * (1 - t/60) <= 39 from t = 1.5 s.
    assert wait == pytest.approx(21.5)


@pytest.mark.parametrize(
    ("moment", "period", "name", "end"),
    [
        ("2026-12-31T23:59:59", "day", "2026-12-31", "2027-01-01T00:00:00"),
        ("2027-01-01T00:00:00", "day", "2027-01-01", "2027-01-02T00:00:00"),
        ("2026-12-31T23:59:59", "month", "2026-12", "2027-01-01T00:00:00"),
        ("2027-02-28T12:00:00", "month", "2027-02", "2027-03-01T00:00:00"),
        ("2027-02-28T12:00:00", "total", "total", None),
    ],
)
def test_period_buckets_are_calendar_utc(
    moment: str, period: str, name: str, end: str | None
) -> None:
    assert bucket(period, at(moment)) == name  # type: ignore[arg-type]
    assert period_end(period, at(moment)) == (at(end) if end else None)  # type: ignore[arg-type]
