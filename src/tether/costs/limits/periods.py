"""Calendar period buckets (UTC): the key a budget's spending is counted under."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tether.costs.limits.base import Period


def bucket(period: Period, now_s: float) -> str:
    """`day` -> "2026-12-01", `month` -> "2026-12", `total` -> "total"."""
    if period == "total":
        return "total"
    moment = datetime.fromtimestamp(now_s, UTC)
    return moment.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def period_end(period: Period, now_s: float) -> float | None:
    """When the bucket holding `now_s` closes (epoch seconds); None for `total`."""
    if period == "total":
        return None
    moment = datetime.fromtimestamp(now_s, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return (start + timedelta(days=1)).timestamp()
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()
