"""The vendored data and the benchmarks' loaders that read it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import DATA, ROOT


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """benchmarks/_results.py, loaded by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "_bench_results", ROOT / "benchmarks" / "_results.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_benchmarks_default_to_the_vendored_samples(bench: ModuleType) -> None:
    assert bench.DEFAULT_DATA == DATA
    assert bench.base_parser("x").parse_args([]).data == DATA


def test_yelp_lines_end_at_newline_only(bench: ModuleType, tmp_path: Path) -> None:
    """A review holding U+0085 (NEL) or U+2028 stays one review: those are no line ends in a TSV."""
    folder = tmp_path / "sentiment"
    folder.mkdir()
    (folder / "yelp_labelled.tsv").write_text(
        "reviews\tsentiment\n"
        "Great food\x85 and the staff were lovely.\t1\n"
        "Cold fries\u2028and a long wait.\t0\n"
        "\n",
        encoding="utf-8",
    )
    assert bench.load_yelp(tmp_path) == [
        ("Great food\x85 and the staff were lovely.", 1),
        ("Cold fries\u2028and a long wait.", 0),
    ]


def test_the_vendored_yelp_sample_loads_whole(bench: ModuleType) -> None:
    reviews = bench.load_yelp(DATA)
    assert len(reviews) == 200
    assert {label for _, label in reviews} == {0, 1}
    warmup, sample = bench.pick_reviews(len(reviews), 300, seed=2024)
    assert len(sample) == 199
    assert warmup not in sample


def test_the_vendored_samples_are_there() -> None:
    assert len(list((DATA / "json" / "JSONTestSuite").glob("*.json"))) == 318
    assert len(json.loads((DATA / "json" / "blns" / "blns.json").read_text("utf-8"))) == 515
    assert len(list((DATA / "schemas" / "maskbench").glob("*.json"))) == 300
    stsb = (DATA / "paraphrase" / "stsb-en-dev.csv").read_bytes()
    assert stsb.count(b"\n") == 1500
    for notice in ("json/JSONTestSuite/LICENSE", "json/blns/LICENSE", "paraphrase/LICENSE"):
        assert (DATA / notice).is_file()
