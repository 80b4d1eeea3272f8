"""Label moves and rollbacks racing each other, on a SQLite file and on PostgreSQL.

Half the threads go through a second engine on the same database, as a second gateway
process would: the serialization must come from the database, not from one process's pool.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from tether.errors import NothingToRollBack
from tether.prompts.registry import LabelEvent, Registry
from tether.store import open_database

from .specs import spec

T = TypeVar("T")
VERSIONS = [f"1.0.{n}" for n in range(6)]
THREADS = 8


@pytest.fixture
def registries(registry: Registry, database_url: str) -> Iterator[list[Registry]]:
    for version in VERSIONS:
        registry.push(spec(version, description=version), source="", author="a", message="")
    other = open_database(database_url)
    try:
        yield [registry, Registry(other)]
    finally:
        other.dispose()


def _race(count: int, work: Callable[[int], T]) -> list[T]:
    """`work(0..count-1)` in `count` threads released together; re-raises any failure."""
    barrier = threading.Barrier(count)

    def run(n: int) -> T:
        barrier.wait()
        return work(n)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _history(registry: Registry) -> list[LabelEvent]:
    return registry.label_history("ticket", "production")


def _assert_chain(registry: Registry) -> list[LabelEvent]:
    """Each event starts where the one before it ended, and the label is where the last ended."""
    events = _history(registry)
    assert events[0].from_version is None
    for before, after in itertools.pairwise(events):
        assert after.from_version == before.to_version, (before, after)
    assert registry.labels("ticket") == {"production": events[-1].to_version}
    return events


def test_concurrent_moves_record_the_version_each_one_replaced(
    registries: list[Registry],
) -> None:
    def moves(n: int) -> list[LabelEvent]:
        pick = random.Random(n)
        return [
            registries[n % 2].set_label(
                "ticket", "production", pick.choice(VERSIONS), actor=f"t{n}", reason=str(i)
            )
            for i in range(10)
        ]

    made = _race(THREADS, moves)
    events = _assert_chain(registries[0])
    assert len(events) == THREADS * 10
    returned = {(e.actor, e.reason): (e.from_version, e.to_version) for run in made for e in run}
    assert returned == {(e.actor, e.reason): (e.from_version, e.to_version) for e in events}


def test_concurrent_rollbacks_take_consecutive_steps(registries: list[Registry]) -> None:
    for version in VERSIONS:  # 1.0.0 → ... → 1.0.5
        registries[0].set_label("ticket", "production", version, actor="a", reason="")

    def roll_back(n: int) -> str:
        try:
            registries[n % 2].rollback("ticket", "production", actor=f"t{n}", reason="")
        except NothingToRollBack:
            return "refused"
        return "moved"

    # Six rollbacks, five earlier steps: five land, one at a time, and one is refused.
    outcomes = _race(6, roll_back)
    assert sorted(outcomes) == ["moved"] * 5 + ["refused"]
    events = _assert_chain(registries[0])
    rollbacks = [e.to_version for e in events if e.kind == "rollback"]
    assert rollbacks == ["1.0.4", "1.0.3", "1.0.2", "1.0.1", "1.0.0"]


def test_moves_and_rollbacks_interleaved_keep_one_history(registries: list[Registry]) -> None:
    registries[0].set_label("ticket", "production", "1.0.0", actor="a", reason="")

    def churn(n: int) -> None:
        pick = random.Random(100 + n)
        for _ in range(6):
            registry = registries[n % 2]
            if n % 2:
                with contextlib.suppress(NothingToRollBack):
                    registry.rollback("ticket", "production", actor=f"t{n}", reason="")
            else:
                version = pick.choice(VERSIONS)
                registry.set_label("ticket", "production", version, actor=f"t{n}", reason="")

    _race(THREADS, churn)
    events = _assert_chain(registries[0])
    steps: list[str] = []
    for event in events:  # every rollback returned to the step below the top, as documented
        if event.kind == "rollback":
            steps.pop()
            assert event.to_version == steps[-1]
        else:
            steps.append(event.to_version)


def test_rollback_after_a_move_to_the_same_version_is_refused(registry: Registry) -> None:
    for version in VERSIONS[:2]:
        registry.push(spec(version, description=version), source="", author="a", message="")
    registry.set_label("ticket", "production", "1.0.0", actor="a", reason="")
    registry.set_label("ticket", "production", "1.0.1", actor="a", reason="")
    registry.set_label("ticket", "production", "1.0.1", actor="a", reason="again")
    with pytest.raises(NothingToRollBack, match=r"already at 1\.0\.1") as err:
        registry.rollback("ticket", "production", actor="a", reason="")
    assert err.value.current == "1.0.1"
    assert err.value.fix
    assert registry.labels("ticket") == {"production": "1.0.1"}
    assert [e.kind for e in _history(registry)] == ["move"] * 3


def test_rollback_of_a_label_never_moved_is_refused(registry: Registry) -> None:
    registry.push(spec(), source="", author="a", message="")
    with pytest.raises(NothingToRollBack, match="no earlier version") as err:
        registry.rollback("ticket", "production", actor="a", reason="")
    assert err.value.current is None
    assert _history(registry) == []
