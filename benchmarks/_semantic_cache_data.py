"""Data for benchmarks/semantic_cache.py: STS-B pairs, the texts that fill a cache for the
latency runs, and their MiniLM vectors (computed once, kept on disk by content hash).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from _results import check_data
from tether.cache.embedders.base import Embedder
from tether.cache.semantic.fitting import GradedPair, read_pairs

SEED = 20261201
VECTOR_CACHE = Path.home() / ".cache" / "tether" / "semantic-cache-bench"
CHUNK = 4096  # texts embedded (and saved) at a time: an interrupted run keeps what it did


@dataclass(frozen=True)
class Sets:
    dev: list[GradedPair]  # >= 4.0 (same) and <= 2.0 (different) dev pairs
    train: list[GradedPair] | None  # the same from the train file, when present
    dev_file: Path
    train_file: Path | None
    dev_rows: int  # every row of the dev file, ambiguous ones included
    train_sentences: list[str]  # every sentence of the train file (for the latency fill)


def read_sets(data: Path) -> Sets:
    dev_file = check_data(data, "paraphrase", "stsb-en-dev.csv")
    train_file = dev_file.parent / "stsb-en-train.csv"
    train = read_pairs(train_file) if train_file.exists() else None
    sentences: list[str] = []
    if train_file.exists():
        for line in _rows(train_file):
            sentences += line[:2]
    return Sets(
        dev=read_pairs(dev_file),
        train=train,
        dev_file=dev_file,
        train_file=train_file if train_file.exists() else None,
        dev_rows=len(_rows(dev_file)),
        train_sentences=sentences,
    )


def _rows(path: Path) -> list[list[str]]:
    import csv

    with path.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.reader(handle) if row]


def fill_texts(sets: Sets, count: int, held_out: set[str]) -> list[str]:
    """`count` distinct texts: the STS-B sentences (train, then dev's first sentences), then
    synthetic variants (the first half of one sentence's words joined to the second half of
    another's, seeded), none of them in `held_out` (the query texts)."""
    real: list[str] = []
    seen: set[str] = set(held_out)
    for text in [*sets.train_sentences, *(p.cached for p in sets.dev)]:
        if text not in seen:
            seen.add(text)
            real.append(text)
    texts = real[:count]
    rng = random.Random(SEED)
    words = [text.split() for text in real]
    while len(texts) < count:
        a, b = rng.choice(words), rng.choice(words)
        cut_a, cut_b = max(1, len(a) // 2), len(b) // 2
        text = " ".join(a[:cut_a] + b[cut_b:])
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def cached_vectors(
    embedder: Embedder, texts: list[str], on_progress: Callable[[int], None] | None = None
) -> NDArray[np.float32]:
    """The texts' vectors, computed in chunks of CHUNK and kept under VECTOR_CACHE."""
    digest = hashlib.sha256("\0".join([embedder.name, *texts]).encode("utf-8")).hexdigest()[:16]
    folder = VECTOR_CACHE / f"{len(texts)}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    parts: list[NDArray[np.float32]] = []
    for start in range(0, len(texts), CHUNK):
        path = folder / f"{start:08d}.npy"
        if path.exists():
            part = np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
        else:
            part = embedder.embed(texts[start : start + CHUNK])
            np.save(path, part)
        parts.append(part)
        if on_progress is not None:
            on_progress(start + len(part))
    if not parts:
        return np.zeros((0, embedder.dimensions), dtype=np.float32)
    return np.concatenate(parts)
