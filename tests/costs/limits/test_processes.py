"""Replicas sharing a store: separate processes reserving against one budget or one rate
limit at the same moment never admit more than it allows."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres
from tests.costs.limits.conftest import REDIS_URL
from tests.costs.limits.fire import SHARED_KEY
from tether.costs.limits import Budget
from tether.costs.limits.database import DatabaseLimitStore
from tether.costs.limits.redis import RedisLimitStore
from tether.store.engine import open_database

ROOT = Path(__file__).resolve().parents[3]


def fire_together(runs: list[list[str]]) -> list[dict[str, int]]:
    """Start one process per argument list, wait until each has connected, start them at
    once, and return what each reports."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.costs.limits.fire", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                _, errors = process.communicate(timeout=30)
                pytest.fail(f"a firing process did not start: {line!r} {errors}")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            out, errors = process.communicate(timeout=120)
            assert process.returncode == 0, errors
            reports.append(json.loads(out.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def budget_runs(store: str, url: str, *extra: str) -> list[list[str]]:
    args = ["--store", store, "--url", url, "--count", "100", "--cost", "0.01", "--budget", "1"]
    return [[*args, *extra] for _ in range(2)]


def check_budget(reports: list[dict[str, int]]) -> int:
    assert sum(r["failed"] for r in reports) == 0
    admitted = sum(r["admitted"] for r in reports)
    # $1 at $0.01 a reservation: 100, or one over at most.
    assert 100 <= admitted <= 101, reports
    return admitted


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_processes_sharing_a_database_hold_one_budget(backend: str, tmp_path: Path) -> None:
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'limits.db'}"
            if backend == "sqlite"
            else stack.enter_context(fresh_postgres())
        )
        open_database(url).dispose()  # migrated once, before the processes race
        admitted = check_budget(fire_together(budget_runs("database", url)))
        store = DatabaseLimitStore.open(url)
        try:
            spent = await store.spent(Budget.for_key(SHARED_KEY, 1.0, "month"))
        finally:
            await store.close()
    assert spent == pytest.approx(admitted * 0.01)


async def test_processes_sharing_redis_hold_one_budget(redis_prefix: str) -> None:
    admitted = check_budget(
        fire_together(budget_runs("redis", REDIS_URL, "--prefix", redis_prefix))
    )
    store = RedisLimitStore.open(REDIS_URL, key_prefix=redis_prefix)
    try:
        spent = await store.spent(Budget.for_key(SHARED_KEY, 1.0, "month"))
    finally:
        await store.close()
    assert spent == pytest.approx(admitted * 0.01)


def test_processes_sharing_redis_hold_one_rate_limit(redis_prefix: str) -> None:
    args = ["--store", "redis", "--url", REDIS_URL, "--prefix", redis_prefix]
    reports = fire_together([[*args, "--count", "200", "--rpm", "300"] for _ in range(3)])
    assert sum(r["failed"] for r in reports) == 0
    admitted = sum(r["admitted"] for r in reports)
    assert abs(admitted - 300) <= 6, reports  # 300 rpm, 600 asked within a second
