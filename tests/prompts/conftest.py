"""A registry on each supported database: a SQLite file, and a fresh database on the local
PostgreSQL server (127.0.0.1:5432, trust auth), dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_postgres
from tether.prompts.registry import Registry
from tether.store import open_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    with fresh_postgres() as url:
        yield url


@pytest.fixture
def registry(database_url: str) -> Iterator[Registry]:
    engine = open_database(database_url)
    try:
        yield Registry(engine)
    finally:
        engine.dispose()
