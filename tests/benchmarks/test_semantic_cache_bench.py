"""benchmarks/semantic_cache.py on a slice of the vendored STS-B sample: the curves' arithmetic,
the fill texts, and lookups through the real ResponseCache (exact and semantic)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.conftest import DATA, ROOT

BENCH = ROOT / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import semantic_cache

    return semantic_cache


def test_curve_and_operating_points(bench: ModuleType) -> None:
    scores = np.array([0.9, 0.8, 0.8, 0.5, -np.inf])
    right = np.array([True, True, False, True, True])
    points = bench.curve(scores, right, positives=4)
    assert [p["threshold"] for p in points] == [0.9, 0.8, 0.5]
    assert points[1]["precision"] == pytest.approx(2 / 3)
    assert points[1]["recall"] == pytest.approx(0.5)
    assert points[2]["hit_rate"] == pytest.approx(0.8)
    assert bench.at_recall(points, 0.75)["threshold"] == 0.5
    point = bench.at(scores, right, 4, 0.8)
    assert (point["hits"], point["false_hits"]) == (3, 1)
    assert 1 / 3 < point["false_hit_upper_99"] <= 1


def test_fill_texts_are_distinct_and_skip_the_queries(bench: ModuleType) -> None:
    from _semantic_cache_data import fill_texts, read_sets

    sets = read_sets(DATA)
    held_out = {p.query for p in sets.dev}
    texts = fill_texts(sets, 2000, held_out)
    assert len(texts) == len(set(texts)) == 2000
    assert not held_out & set(texts)
    assert texts == fill_texts(sets, 2000, held_out)  # seeded


def test_lookups_through_the_response_cache(bench: ModuleType) -> None:
    import _semantic_cache_tether as tc
    from _semantic_cache_data import read_sets
    from tether.cache.embedders import MiniLMEmbedder

    pairs = [p for p in read_sets(DATA).dev if p.same][:20]
    stored = sorted({p.cached for p in pairs})
    vectors = MiniLMEmbedder().embed(stored)

    async def scenario() -> tuple[list[tc.Found], list[tc.Found]]:
        cache, backend = tc.new_cache(100, 0.02)
        await tc.fill(cache, backend, stored, vectors)
        exact = [await tc.lookup(cache, text) for text in stored[:3]]
        semantic = [await tc.lookup(cache, p.query) for p in pairs]
        await cache.close()
        return exact, semantic

    exact, semantic = tc.run(scenario())
    assert [f.kind for f in exact] == ["exact"] * 3
    assert [f.served for f in exact] == [0, 1, 2]
    served = [(f, p) for f, p in zip(semantic, pairs, strict=True) if f.kind == "semantic"]
    assert served, "some paraphrases are served"
    assert all(f.score is not None and f.seconds > 0 for f, _ in served)
    partners = sum(stored[f.served] == p.cached for f, p in served)
    assert partners >= len(served) - 1


def test_gptcache_worker_is_standalone() -> None:
    """It runs in GPTCache's own virtualenv, where tether is not installed."""
    source = (BENCH / "_semantic_cache_gptcache.py").read_text()
    assert "from tether" not in source
    assert "import tether" not in source


def test_vendored_sample_is_the_default(bench: ModuleType) -> None:
    assert Path(bench.base_parser("x").parse_args([]).data) == DATA
