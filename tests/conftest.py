"""Shared fixtures: paths to the shared data sets, fake-backed clients, the real local model."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether import Client, FakeProvider, PriceSettings, Settings
from tether.settings import ModelSettings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples" / "customer_feedback"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared data sets not found at {DATA}: the repo must sit beside shared/")
    return DATA


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated from the user's config, with one priced fake model."""
    return Settings(
        cache_dir=tmp_path / "cache",
        default_model="fake",
        models={
            "fake": ModelSettings(
                provider="fake",
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
def local_client() -> Iterator[Client]:
    """The real bundled model (Gemma 3 270M through llama.cpp), loaded once per session."""
    with Client(Settings.load(environ={})) as c:
        yield c


@pytest.fixture(scope="session")
def feedback_classifier() -> object:
    sys.path.insert(0, str(EXAMPLES))
    import classifier

    return classifier
