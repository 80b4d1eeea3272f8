"""Each backend admits, holds and settles the same way (see the `store` fixture)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
import sqlalchemy as sa

from tests.costs.limits.conftest import REDIS_URL, Clock
from tether.costs.limits import Budget, Claim, LimitStore, RateLimit
from tether.costs.limits.database import DatabaseLimitStore
from tether.costs.limits.redis import RedisLimitStore
from tether.errors import BudgetExhausted, DatabaseUnavailable, LimitExceeded

KEY = "key:key_0123456789abcdef"


def rpm(limit: int) -> RateLimit:
    return RateLimit(KEY, "requests", limit)


def tpm(limit: int) -> RateLimit:
    return RateLimit(KEY, "tokens", limit)


async def test_rpm_counts_requests_in_a_sliding_minute(store: LimitStore, clock: Clock) -> None:
    claim = Claim(rates=(rpm(3),))
    first = await store.reserve(claim)
    assert first.quota.requests is not None
    assert first.quota.requests.remaining == 2
    clock.advance(10)
    await store.reserve(claim)
    third = await store.reserve(claim)
    assert third.quota.requests is not None
    assert third.quota.requests.remaining == 0
    with pytest.raises(LimitExceeded, match=f"request rate limit of 3/min for {KEY}") as refused:
        await store.reserve(claim)
    # The oldest request leaves the window 50 s from now; the database's weighted minute
    # (windows.py) counts 3 * (1 - t/60) of it after the next boundary, under 3 from t = 20.
    expected = 70.0 if store.name == "database" else 50.0
    assert refused.value.retry_after_s == pytest.approx(expected, abs=0.01)
    assert refused.value.quota is not None  # for the 429's x-ratelimit headers
    assert refused.value.quota.requests is not None
    assert (refused.value.quota.requests.limit, refused.value.quota.requests.remaining) == (3, 0)
    clock.advance(121)  # every counted request has left the window
    await store.reserve(claim)


async def test_tpm_settled_lower_frees_room(store: LimitStore) -> None:
    claim = Claim(rates=(tpm(1000),), tokens=600)
    first = await store.reserve(claim)
    with pytest.raises(LimitExceeded, match="token rate limit of 1000/min"):
        await store.reserve(claim)
    await store.settle(first, tokens=100, cost_usd=0.0)  # it used far less than its maximum
    second = await store.reserve(claim)
    assert second.quota.tokens is not None
    assert second.quota.tokens.remaining == 300
    with pytest.raises(LimitExceeded):
        await store.reserve(Claim(rates=(tpm(1000),), tokens=301))


async def test_a_refusal_reports_what_is_left_without_counting_itself(store: LimitStore) -> None:
    claim = Claim(rates=(rpm(5), tpm(100)), tokens=60)
    await store.reserve(claim)
    with pytest.raises(LimitExceeded, match="token rate limit") as refused:
        await store.reserve(claim)
    quota = refused.value.quota
    assert quota is not None
    assert quota.requests is not None
    assert quota.tokens is not None
    assert (quota.requests.remaining, quota.tokens.remaining) == (4, 40)
    assert 0 < quota.tokens.reset_s <= 120


async def test_a_request_larger_than_the_tpm_says_waiting_will_not_help(
    store: LimitStore,
) -> None:
    with pytest.raises(LimitExceeded, match="needs 5000 tokens, more than") as refused:
        await store.reserve(Claim(rates=(tpm(1000),), tokens=5000))
    assert "max_tokens" in str(refused.value)


async def test_extend_holds_more_and_settle_replaces_it_with_what_was_used(
    store: LimitStore,
) -> None:
    budget = Budget.for_key("key_a", 1.0, "month")
    held = await store.reserve(Claim(budgets=(budget,), cost_usd=0.4))
    assert await store.spent(budget) == pytest.approx(0.4)
    await store.extend(held, tokens=0, cost_usd=0.4)  # a retry
    assert await store.spent(budget) == pytest.approx(0.8)
    with pytest.raises(BudgetExhausted):
        await store.extend(held, tokens=0, cost_usd=0.4)
    assert await store.spent(budget) == pytest.approx(0.8)  # a refused extend holds nothing
    await store.settle(held, tokens=0, cost_usd=0.1)
    assert await store.spent(budget) == pytest.approx(0.1)
    await store.reserve(Claim(budgets=(budget,), cost_usd=0.9))
    assert await store.spent(budget) == pytest.approx(1.0)
    with pytest.raises(BudgetExhausted):  # full: even a free request is refused
        await store.reserve(Claim(budgets=(budget,), cost_usd=0.0))


async def test_extend_counts_tokens_but_not_another_request(store: LimitStore) -> None:
    claim = Claim(rates=(rpm(1), tpm(1000)), tokens=400)
    held = await store.reserve(claim)
    await store.extend(held, tokens=400, cost_usd=0.0)  # rpm 1 is not spent again
    with pytest.raises(LimitExceeded, match="token rate limit"):
        await store.extend(held, tokens=400, cost_usd=0.0)
    assert held.tokens == 800


async def test_a_refused_claim_takes_nothing(store: LimitStore) -> None:
    """All or nothing: a budget refusal does not use up the rate limits checked before it."""
    budget = Budget.for_key("key_a", 0.5, "day")
    for _ in range(3):
        with pytest.raises(BudgetExhausted):
            await store.reserve(Claim(rates=(rpm(2),), budgets=(budget,), cost_usd=1.0))
    await store.reserve(Claim(rates=(rpm(2),), budgets=(budget,), cost_usd=0.1))
    await store.reserve(Claim(rates=(rpm(2),), budgets=(budget,), cost_usd=0.1))
    assert await store.spent(budget) == pytest.approx(0.2)


async def test_settling_above_the_hold_charges_what_was_used(store: LimitStore) -> None:
    budget = Budget.for_key("key_a", 1.0, "total")
    held = await store.reserve(Claim(budgets=(budget,), cost_usd=0.1))
    await store.settle(held, tokens=0, cost_usd=0.3)
    assert await store.spent(budget) == pytest.approx(0.3)


async def test_budgets_start_afresh_each_period(store: LimitStore, clock: Clock) -> None:
    day = Budget.for_key("key_a", 1.0, "day")
    month = Budget.for_prompt("summarize", 1.0, "month")
    total = Budget.for_key("key_b", 1.0, "total")
    for budget in (day, month, total):
        held = await store.reserve(Claim(budgets=(budget,), cost_usd=1.0))
        assert (
            held.buckets[budget.scope]
            == {
                "day": "2026-12-31",
                "month": "2026-12",
                "total": "total",
            }[budget.period]
        )
        await store.settle(held, tokens=0, cost_usd=1.0)
        with pytest.raises(BudgetExhausted):
            await store.reserve(Claim(budgets=(budget,), cost_usd=0.01))
    clock.advance(180)  # 2027-01-01 00:01 UTC: a new day, month and year
    for budget in (day, month):
        assert await store.spent(budget) == 0.0
        held = await store.reserve(Claim(budgets=(budget,), cost_usd=0.01))
        assert held.buckets[budget.scope] in ("2027-01-01", "2027-01")
    assert await store.spent(total) == pytest.approx(1.0)
    with pytest.raises(BudgetExhausted):
        await store.reserve(Claim(budgets=(total,), cost_usd=0.01))


async def test_a_request_settles_into_the_period_it_reserved_in(
    store: LimitStore, clock: Clock
) -> None:
    day = Budget.for_key("key_a", 1.0, "day")
    held = await store.reserve(Claim(budgets=(day,), cost_usd=0.5))
    clock.advance(180)  # the call ran past midnight
    await store.settle(held, tokens=0, cost_usd=0.2)
    assert await store.spent(day) == 0.0  # the new day owes nothing
    clock.advance(-180)
    assert await store.spent(day) == pytest.approx(0.2)


async def test_budget_exhausted_names_the_scope_period_and_fix(store: LimitStore) -> None:
    budget = Budget.for_prompt("summarize", 0.05, "month")
    await store.reserve(Claim(budgets=(budget,), cost_usd=0.04))
    with pytest.raises(BudgetExhausted) as refused:
        await store.reserve(Claim(budgets=(budget,), cost_usd=0.02))
    error = refused.value
    assert (error.scope, error.period, error.bucket) == ("prompt:summarize", "month", "2026-12")
    assert error.spent_usd == pytest.approx(0.04)
    assert error.limit_usd == 0.05
    assert error.fix == budget.fix
    assert "prompt:summarize has spent $0.0400 of its $0.0500 budget for month 2026-12" in str(
        error
    )
    assert "[[budgets]]" in str(error)  # the fix says where to raise it


async def test_settling_twice_counts_once(store: LimitStore) -> None:
    budget = Budget.for_key("key_a", 1.0, "month")
    claim = Claim(rates=(tpm(1000),), budgets=(budget,), tokens=500, cost_usd=0.3)
    held = await store.reserve(claim)
    stale_copy = dataclasses.replace(held)  # another holder of the same reservation
    await store.settle(held, tokens=100, cost_usd=0.2)
    await store.settle(held, tokens=100, cost_usd=0.2)
    await store.settle(stale_copy, tokens=0, cost_usd=0.0)  # the store remembers, not the object
    assert held.settled
    assert await store.spent(budget) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="settled"):
        await store.extend(held, tokens=1, cost_usd=0.0)
    with pytest.raises(ValueError, match="settled"):
        await store.extend(stale_copy, tokens=1, cost_usd=0.0)
    after = await store.reserve(Claim(rates=(tpm(1000),), tokens=900))
    assert after.quota.tokens is not None
    assert after.quota.tokens.remaining == 0  # 100 settled + 900


async def test_two_hundred_concurrent_reservations_fill_a_budget_exactly(
    store: LimitStore,
) -> None:
    budget = Budget.for_key("key_a", 1.0, "month")
    claim = Claim(budgets=(budget,), cost_usd=0.01)

    async def one() -> bool:
        try:
            await store.reserve(claim)
        except BudgetExhausted:
            return False
        return True

    admitted = await asyncio.gather(*(one() for _ in range(200)))
    assert sum(admitted) == 100
    assert await store.spent(budget) == pytest.approx(1.0)


async def test_a_busy_minute_leaves_the_redis_window_whole(clock: Clock, redis_prefix: str) -> None:
    """More uses expire at once than one Lua call can unpack (about 8,000)."""
    store = RedisLimitStore.open(REDIS_URL, key_prefix=redis_prefix, clock=clock)
    try:
        claim = Claim(rates=(tpm(10_000),), tokens=1)
        for _ in range(9):
            await asyncio.gather(*(store.reserve(claim) for _ in range(1000)))
        with pytest.raises(LimitExceeded):
            await store.reserve(Claim(rates=(tpm(10_000),), tokens=1001))
        clock.advance(60)
        whole = await store.reserve(Claim(rates=(tpm(10_000),), tokens=10_000))
        assert whole.quota.tokens is not None
        assert whole.quota.tokens.remaining == 0
    finally:
        await store.close()


async def test_a_request_without_limits_needs_no_shared_store() -> None:
    """Nothing to count: a dead database or Redis server cannot delay or refuse it."""
    dead = [
        DatabaseLimitStore(sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")),
        RedisLimitStore.open("redis://127.0.0.1:1/0"),
    ]
    for store in dead:
        held = await store.reserve(Claim(tokens=100, cost_usd=0.5))
        await store.extend(held, tokens=100, cost_usd=0.5)
        await store.settle(held, tokens=150, cost_usd=0.7)
        assert held.settled
        with pytest.raises(DatabaseUnavailable):  # and a limited one would have asked it
            await store.reserve(Claim(rates=(rpm(10),)))
        await store.close()
