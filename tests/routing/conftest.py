"""RouteLLM outcome samples (tests/data/routing, Apache-2.0) as routing datasets."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from tether.routing.learned.dataset import Outcome, Outcomes

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


def read_routellm(*files: Path) -> Outcomes:
    csv.field_size_limit(sys.maxsize)
    rows = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            rows += [
                Outcome(r["prompt"], r[WEAK] == "True", r[STRONG] == "True")
                for r in csv.DictReader(handle)
            ]
    return Outcomes(tuple(rows))


@pytest.fixture(scope="session")
def gsm8k(data_dir: Path) -> Outcomes:
    return read_routellm(data_dir / "routing" / "gsm8k" / "gsm8k_responses.csv")


@pytest.fixture(scope="session")
def mmlu(data_dir: Path) -> Outcomes:
    return read_routellm(*sorted((data_dir / "routing" / "mmlu").glob("*.csv")))
