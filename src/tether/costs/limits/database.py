"""Limits shared through the database (SQLite or PostgreSQL), for replicas that share one.

Every reserve, extend and settle is one transaction of conditional updates (a row missing,
in a new minute or period, is inserted and the update tried again): a counter only grows when
the result still fits (`UPDATE ... SET held = held + :x WHERE spent + held + :x
<= :limit`), so concurrent requests from any number of processes cannot overshoot a limit;
a claim that does not fit everywhere rolls the whole transaction back. Rows are locked in one
order (rate windows, then budgets, each sorted) so two transactions never deadlock.

Rate limits use two fixed minute buckets weighted into a sliding minute (see windows.py):
two rows per scope rather than one per request. A reservation's row is deleted when it
settles, so a second settle finds nothing and changes nothing.

All database work runs in a worker thread (`in_thread`), never on the event loop.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from tether.costs.limits import windows
from tether.costs.limits.base import (
    NANO,
    Budget,
    Claim,
    LimitStore,
    RateLimit,
    Reservation,
    nano,
)
from tether.costs.limits.periods import bucket
from tether.costs.limits.quota import Allowance, Quota, tightest
from tether.costs.limits.refusals import budget_refused, rate_refused, room_needed
from tether.store.engine import open_database
from tether.store.offload import in_thread
from tether.store.tables import limit_budgets, limit_reservations, limit_windows

WHAT = "limit store"


class DatabaseLimitStore(LimitStore):
    name = "database"

    def __init__(
        self, engine: Engine, *, clock: Callable[[], float] = time.time, owns_engine: bool = False
    ) -> None:
        self._engine = engine
        self._clock = clock  # epoch seconds; replicas should keep their clocks in sync (NTP)
        self._owns_engine = owns_engine
        # SQLite's busy wait is unfair: under load some writers starve past its timeout while
        # others take the lock again. One writer at a time per process leaves it only the
        # other processes to wait for.
        self._one_writer = threading.Lock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def open(
        cls, database_url: str, *, clock: Callable[[], float] = time.time
    ) -> DatabaseLimitStore:
        return cls(open_database(database_url), clock=clock, owns_engine=True)

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        if self._one_writer is None:
            with self._engine.begin() as conn:
                yield conn
            return
        with self._one_writer, self._engine.begin() as conn:
            yield conn

    async def reserve(self, claim: Claim) -> Reservation:
        now = self._clock()
        buckets = {b.scope: bucket(b.period, now) for b in claim.budgets}
        reservation = Reservation(
            uuid.uuid4().hex, claim, claim.tokens, claim.cost_usd, buckets=buckets
        )
        cost = nano(claim.cost_usd)

        def work() -> None:
            moment = windows.Moment.at(now)
            with self._writing() as conn:
                # A write first: SQLite then takes its write lock at once, never mid-way.
                conn.execute(
                    limit_reservations.insert().values(
                        id=reservation.id,
                        nano=cost,
                        tokens=claim.tokens,
                        minute=moment.minute,
                        created_at=datetime.fromtimestamp(now, UTC),
                    )
                )
                allowances = _take_rates(conn, claim.rates, claim.tokens, moment, requests=True)
                _hold_budgets(conn, claim.budgets, buckets, cost)
            reservation.quota = tightest(allowances)

        if not claim.empty:  # no limits: no database work, so no stall can delay it
            await in_thread(work, what=WHAT)
        return reservation

    async def extend(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        now = self._clock()
        cost = nano(cost_usd)
        claim = reservation.claim

        def work() -> None:
            moment = windows.Moment.at(now)
            with self._writing() as conn:
                found = conn.execute(
                    update(limit_reservations)
                    .where(limit_reservations.c.id == reservation.id)
                    .values(
                        nano=limit_reservations.c.nano + cost,
                        tokens=limit_reservations.c.tokens + tokens,
                        minute=moment.minute,
                    )
                )
                if found.rowcount != 1:
                    raise ValueError(f"reservation {reservation.id} is settled; reserve anew")
                allowances = _take_rates(conn, claim.rates, tokens, moment, requests=False)
                _hold_budgets(conn, claim.budgets, reservation.buckets, cost)
            if allowances:
                reservation.quota = tightest(allowances)

        if reservation.settled:
            raise ValueError(f"reservation {reservation.id} is settled; reserve anew")
        if not claim.empty:
            await in_thread(work, what=WHAT)
        reservation.tokens += tokens
        reservation.cost_usd += cost_usd

    async def settle(self, reservation: Reservation, *, tokens: int, cost_usd: float) -> None:
        used = nano(cost_usd)
        claim = reservation.claim

        def work() -> None:
            with self._writing() as conn:
                held = conn.execute(
                    delete(limit_reservations)
                    .where(limit_reservations.c.id == reservation.id)
                    .returning(
                        limit_reservations.c.nano,
                        limit_reservations.c.tokens,
                        limit_reservations.c.minute,
                    )
                ).first()
                if held is None:
                    return  # settled already: the first settle counted
                correction = tokens - held.tokens
                for rate in sorted(claim.rates, key=_rate_order):
                    if rate.unit != "tokens" or correction == 0:
                        continue
                    corrected = limit_windows.c.used + correction
                    conn.execute(
                        update(limit_windows)
                        .where(_window(rate, held.minute))
                        .values(used=case((corrected < 0, 0), else_=corrected))
                    )
                for budget in sorted(claim.budgets, key=lambda b: b.scope):
                    conn.execute(
                        update(limit_budgets)
                        .where(_account(budget.scope, reservation.buckets[budget.scope]))
                        .values(
                            held_nano=limit_budgets.c.held_nano - held.nano,
                            spent_nano=limit_budgets.c.spent_nano + used,
                        )
                    )

        if reservation.settled:
            return
        if not claim.empty:
            await in_thread(work, what=WHAT)
        reservation.settled = True

    async def spent(self, budget: Budget) -> float:
        where = _account(budget.scope, bucket(budget.period, self._clock()))

        def work() -> int:
            with self._engine.connect() as conn:
                total = conn.execute(
                    select(limit_budgets.c.spent_nano + limit_budgets.c.held_nano).where(where)
                ).scalar()
            return int(total or 0)

        return await in_thread(work, what=WHAT) / NANO

    async def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()


def _take_rates(
    conn: Connection,
    rates: tuple[RateLimit, ...],
    tokens: int,
    moment: windows.Moment,
    *,
    requests: bool,
) -> list[tuple[str, Allowance]]:
    """Count one request (when `requests`) and `tokens` against each rate, or raise."""
    allowances: list[tuple[str, Allowance]] = []
    taken: dict[tuple[str, str], int] = {}  # counted so far in this transaction
    for rate in sorted(rates, key=_rate_order):
        if rate.unit == "requests" and not requests:
            continue
        asked = 1 if rate.unit == "requests" else tokens
        previous = (
            select(func.coalesce(func.max(limit_windows.c.used), 0))
            .where(_window(rate, moment.minute - 1))
            .scalar_subquery()
        )
        count = (
            update(limit_windows)
            .where(
                _window(rate, moment.minute),
                limit_windows.c.used + asked + previous * moment.previous_weight <= rate.per_minute,
            )
            .values(used=limit_windows.c.used + asked)
            .returning(limit_windows.c.used, previous)
        )
        counted = conn.execute(count).first()
        if counted is None:
            # No room, or no row yet for this minute: then insert it (unless a concurrent
            # request just did) and count again, so a refusal is only ever for lack of room.
            if _insert_missing(
                conn, limit_windows, scope=rate.scope, unit=rate.unit, minute=moment.minute, used=0
            ):
                conn.execute(
                    delete(limit_windows).where(  # older minutes no longer count
                        limit_windows.c.scope == rate.scope,
                        limit_windows.c.unit == rate.unit,
                        limit_windows.c.minute < moment.minute - 1,
                    )
                )
            counted = conn.execute(count).first()
        if counted is None:
            current, before = _window_counts(conn, rate, moment.minute)
            wait = windows.retry_after(current, before, moment, asked=asked, limit=rate.per_minute)
            left = _left(conn, rates, moment, counted_now=taken)
            raise rate_refused(rate, asked=asked, retry_after_s=wait, quota=left)
        taken[(rate.scope, rate.unit)] = asked
        allowances.append((rate.unit, _allowance(rate, int(counted[0]), int(counted[1]), moment)))
    return allowances


def _allowance(rate: RateLimit, current: int, previous: int, moment: windows.Moment) -> Allowance:
    remaining = rate.per_minute - windows.used(current, previous, moment)
    return Allowance(
        rate.per_minute, max(int(remaining), 0), windows.reset_after(current, previous, moment)
    )


def _left(
    conn: Connection,
    rates: tuple[RateLimit, ...],
    moment: windows.Moment,
    *,
    counted_now: dict[tuple[str, str], int],
) -> Quota:
    """What is left of every rate when a claim is refused, leaving out what this refused
    transaction counted before it rolls back."""
    found = []
    for rate in rates:
        current, previous = _window_counts(conn, rate, moment.minute)
        current -= counted_now.get((rate.scope, rate.unit), 0)
        found.append((rate.unit, _allowance(rate, current, previous, moment)))
    return tightest(found)


def _hold_budgets(
    conn: Connection, budgets: tuple[Budget, ...], buckets: dict[str, str], cost: int
) -> None:
    for budget in sorted(budgets, key=lambda b: b.scope):
        name = buckets[budget.scope]
        account = _account(budget.scope, name)
        total = limit_budgets.c.spent_nano + limit_budgets.c.held_nano
        hold = (
            update(limit_budgets)
            .where(account, total + room_needed(cost) <= nano(budget.limit_usd))
            .values(held_nano=limit_budgets.c.held_nano + cost)
        )
        held = conn.execute(hold).rowcount == 1
        if not held:  # no room, or the period's first hold: as for the rate windows
            _insert_missing(
                conn, limit_budgets, scope=budget.scope, bucket=name, spent_nano=0, held_nano=0
            )
            held = conn.execute(hold).rowcount == 1
        if not held:
            spent = conn.execute(select(total).where(account)).scalar()
            raise budget_refused(budget, name, spent_nano=int(spent or 0))


def _window_counts(conn: Connection, rate: RateLimit, minute: int) -> tuple[int, int]:
    rows = conn.execute(
        select(limit_windows.c.minute, limit_windows.c.used).where(
            limit_windows.c.scope == rate.scope,
            limit_windows.c.unit == rate.unit,
            limit_windows.c.minute.in_([minute, minute - 1]),
        )
    ).all()
    found = {int(m): int(u) for m, u in rows}
    return found.get(minute, 0), found.get(minute - 1, 0)


def _insert_missing(conn: Connection, table: Table, **values: Any) -> bool:
    """Insert the row unless its key exists; True when it was inserted."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return bool(conn.execute(statement).rowcount == 1)


def _window(rate: RateLimit, minute: int) -> Any:
    return and_(
        limit_windows.c.scope == rate.scope,
        limit_windows.c.unit == rate.unit,
        limit_windows.c.minute == minute,
    )


def _account(scope: str, bucket_name: str) -> Any:
    return and_(limit_budgets.c.scope == scope, limit_budgets.c.bucket == bucket_name)


def _rate_order(rate: RateLimit) -> tuple[str, str]:
    return rate.scope, rate.unit
