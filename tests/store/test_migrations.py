"""Migrations carry frozen DDL: a database made by the oldest migration and upgraded step by
step ends up with exactly the schema of a fresh one, and both match today's `tables.py`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import fresh_postgres
from tether.store import open_database
from tether.store.migrations import MIGRATIONS, migrate
from tether.store.tables import metadata


@contextmanager
def empty_engine(kind: str, tmp_path: Path, name: str) -> Iterator[sa.Engine]:
    if kind == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / name}.db")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    with fresh_postgres() as url:
        engine = sa.create_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def schema(engine: sa.Engine) -> dict[str, Any]:
    """Every table's columns (type, nullability), keys, uniques and indexes, comparable."""
    inspector = sa.inspect(engine)
    found: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        columns = {
            c["name"]: (str(c["type"].compile(dialect=engine.dialect)), c["nullable"])
            for c in inspector.get_columns(table)
        }
        found[table] = {
            "columns": columns,
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
            ),
        }
    return found


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrading_from_the_oldest_migration_gives_the_fresh_schema(
    kind: str, tmp_path: Path
) -> None:
    with (
        empty_engine(kind, tmp_path, "upgraded") as upgraded,
        empty_engine(kind, tmp_path, "fresh") as fresh,
        empty_engine(kind, tmp_path, "declared") as declared,
    ):
        oldest = MIGRATIONS[0][0]
        assert migrate(upgraded, upto=oldest) == [oldest]
        for number, _, _ in MIGRATIONS[1:]:
            assert migrate(upgraded, upto=number) == [number]  # one step at a time
        assert migrate(fresh) == [m[0] for m in MIGRATIONS]
        metadata.create_all(declared)

        assert schema(upgraded) == schema(fresh)
        assert schema(fresh) == schema(declared)  # tables.py says what the migrations built
        assert "expires_at" in schema(upgraded)["api_keys"]["columns"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_rows_written_before_an_upgrade_survive_it(kind: str, tmp_path: Path) -> None:
    with empty_engine(kind, tmp_path, "old") as engine:
        migrate(engine, upto=2)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO api_keys (id, name, secret_hash, prefix, models, prompts, "
                    "created_at) VALUES ('key_old', 'old', 'h', 'tk-', '[]', '[]', :at)"
                ),
                {"at": datetime.now(UTC)},
            )
        assert migrate(engine) == [m[0] for m in MIGRATIONS if m[0] > 2]
        with engine.connect() as conn:
            row = conn.execute(
                sa.text("SELECT name, expires_at, budget_period FROM api_keys")
            ).one()
        assert tuple(row) == ("old", None, None)


def test_open_database_applies_each_migration_once(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        assert migrate(engine) == []
        with engine.connect() as conn:
            numbers = conn.execute(sa.text("SELECT number FROM schema_migrations")).scalars()
            assert sorted(numbers) == [m[0] for m in MIGRATIONS]
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_signals_stored_one_row_per_signal_become_one_row_per_request(
    kind: str, tmp_path: Path
) -> None:
    at = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    old = [
        ("req_a", "latency_ms", 12.5, None),
        ("req_a", "enum:sentiment", None, "positive"),
        ("req_a", "confidence", 0.75, None),
        ("req_b", "latency_ms", 3.0, None),
    ]
    with empty_engine(kind, tmp_path, "signals") as engine:
        migrate(engine, upto=8)
        with engine.begin() as conn:
            for request_id, name, value, label in old:
                conn.execute(
                    sa.text(
                        "INSERT INTO request_signals (request_id, at, prompt, version, model, "
                        "key_id, name, value, label) VALUES (:r, :at, 'qa', '1.0.0', 'fake', "
                        "NULL, :n, :v, :l)"
                    ),
                    {"r": request_id, "at": at, "n": name, "v": value, "l": label},
                )
        assert migrate(engine) == [9]
        from tether.store.signals import signal_names, signal_series

        assert signal_names(engine, "qa", "1.0.0") == ["confidence", "enum:sentiment", "latency_ms"]
        latency = signal_series(engine, prompt="qa", version="1.0.0", name="latency_ms")
        assert sorted(p.value for p in latency) == [3.0, 12.5]
        (label,) = signal_series(engine, prompt="qa", version="1.0.0", name="enum:sentiment")
        assert label.label == "positive"
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM request_signals")).scalar_one()
            assert count == 2
        with engine.begin() as conn:  # new rows take ids after the carried ones
            conn.execute(
                sa.text(
                    "INSERT INTO request_signals (request_id, at, names, numbers) "
                    "VALUES ('req_c', :at, '[]', '{}')"
                ),
                {"at": at},
            )
