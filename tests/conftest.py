"""Shared fixtures: the vendored test data, fake-backed clients, the real local model."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from tests.upstream import ScriptedUpstream
from tether import Client, FakeProvider, PriceSettings, Settings
from tether.settings import CallSettings, ModelSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"  # small vendored samples: see tests/data/README.md
EXAMPLES = ROOT / "examples" / "customer_feedback"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The vendored samples (same layout as the full data sets the benchmarks take)."""
    return DATA


# Retries back off for milliseconds, not seconds: tests exercise the logic, not the waiting.
FAST_RETRIES = CallSettings(retry_base_s=0.001, retry_cap_s=0.01)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated from the user's config, with one priced fake model (tried once per
    call: retries are tested where they are the subject)."""
    return Settings(
        cache_dir=tmp_path / "cache",
        data_dir=tmp_path / "data",
        calls=FAST_RETRIES,
        default_model="fake",
        models={
            "fake": ModelSettings(
                provider="fake",
                max_retries=0,
                price=PriceSettings(input_per_million=1.0, output_per_million=2.0),
            )
        },
    )


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def client(settings: Settings, fake: FakeProvider) -> Iterator[Client]:
    with Client(settings, providers={"fake": fake}) as c:
        yield c


@pytest.fixture(scope="session")
def local_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The real bundled models (`local`: Qwen2.5-Coder-0.5B-Instruct, `local-small`: Gemma 3
    270M, through llama.cpp), each loaded once per session on first use."""
    data = tmp_path_factory.mktemp("local-data")
    with Client(Settings.load(environ={}).model_copy(update={"data_dir": data})) as c:
        yield c


@pytest.fixture(scope="session")
def feedback_classifier() -> object:
    sys.path.insert(0, str(EXAMPLES))
    import classifier

    return classifier


PG_ADMIN_URL = os.environ.get(
    "TETHER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A new, empty database on the local PostgreSQL server (its URL), dropped afterwards."""
    name = f"tether_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required: {exc}")
    try:
        yield sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    """A scripted OpenAI-compatible server on 127.0.0.1 (append steps to `.script`)."""
    server = ScriptedUpstream([])
    yield server
    server.close()


REDIS_URL = os.environ.get("TETHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the local Redis; its keys are deleted afterwards."""
    prefix = f"tether-test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        stale = list(client.scan_iter(f"{prefix}:*", count=1000))
        if stale:
            client.delete(*stale)
    finally:
        client.close()
