"""GPTCache's side of benchmarks/semantic_cache.py, run by the Python of GPTCache's own
virtualenv (it imports gptcache and numpy, never tether):

    python _semantic_cache_gptcache.py JOB.json

The job names `vectors` (a .npy file of MiniLM vectors, one row per text, computed by tether's
embedder) and `texts` (a JSON list, one text per row); GPTCache's embedding function looks a
text's row up, so both caches compare the same vectors. GPTCache runs as documented:
`get_data_manager(CacheBase("sqlite"), VectorBase("faiss"))`, `SearchDistanceEvaluation`,
`cache.import_data` to store and `gptcache.adapter.api.get` to look up, with
`similarity_threshold` 0 so every lookup returns its best candidate; the `hit_callback` of `get`
reports that candidate's score (GPTCache's rank over its range, what `similarity_threshold` is
compared with), so the hits at any threshold follow from one pass.

Steps (each optional in the job):
- pairwise: for each pair, a fresh cache holding its first text only, queried with the second;
- populated: one cache holding every `stored` text, queried with every `queries` text;
- latency: a cache of the first `size` texts of `fill`, `get` timed for each `probe` text.

Writes the job's `out` (JSON): per query the answer returned (the stored text's index) and its
score, and the timings in microseconds.
"""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from gptcache import Cache, Config
from gptcache.adapter.api import get
from gptcache.manager import CacheBase, VectorBase, get_data_manager
from gptcache.processor.pre import get_prompt
from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

DIMENSIONS = 384


class Vectors:
    """Texts to their precomputed vectors: GPTCache's embedding function."""

    def __init__(self, vectors: np.ndarray, texts: list[str]) -> None:
        self.vectors = vectors
        self.row = {text: index for index, text in enumerate(texts)}

    def __call__(self, text: str, **_: Any) -> np.ndarray:
        return self.vectors[self.row[text]]


def new_cache(folder: Path, embed: Vectors, size: int) -> Cache:
    manager = get_data_manager(
        CacheBase("sqlite", sql_url=f"sqlite:///{folder / 'cache.db'}"),
        VectorBase("faiss", dimension=DIMENSIONS, index_path=str(folder / "faiss.index")),
        max_size=size + 1000,  # no eviction during the run
    )
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=embed,
        data_manager=manager,
        similarity_evaluation=SearchDistanceEvaluation(),
        config=Config(similarity_threshold=0.0),
    )
    return cache


def lookup(cache: Cache, text: str) -> tuple[int | None, float | None]:
    """The stored index `get` returns for `text` and its score (0-1), or (None, None)."""
    scores: list[tuple[Any, float]] = []
    answer = get(text, cache_obj=cache, hit_callback=scores.extend)
    if answer is None:
        return None, None
    best = max(score for _, score in scores) if scores else None
    return int(answer), best


def pairwise(job: dict[str, Any], embed: Vectors, root: Path) -> list[list[Any]]:
    found = []
    for index, (stored, query) in enumerate(job["pairs"]):
        folder = root / f"pair-{index}"
        folder.mkdir()
        cache = new_cache(folder, embed, 1)
        cache.import_data(questions=[stored], answers=["0"])
        answer, score = lookup(cache, query)
        found.append([answer, score])
    return found


def populated(job: dict[str, Any], embed: Vectors, root: Path) -> list[list[Any]]:
    folder = root / "populated"
    folder.mkdir()
    stored = job["stored"]
    cache = new_cache(folder, embed, len(stored))
    cache.import_data(questions=stored, answers=[str(i) for i in range(len(stored))])
    return [list(lookup(cache, query)) for query in job["queries"]]


def latency(job: dict[str, Any], embed: Vectors, root: Path) -> dict[str, Any]:
    folder = root / "latency"
    folder.mkdir()
    fill = job["fill"][: job["size"]]
    cache = new_cache(folder, embed, len(fill))
    started = time.perf_counter()
    for start in range(0, len(fill), 1000):
        part = fill[start : start + 1000]
        cache.import_data(questions=part, answers=[str(start + i) for i in range(len(part))])
    filled_s = time.perf_counter() - started
    probes = job["probes"]
    for text in probes[:20]:  # warm-up
        lookup(cache, text)
    timed: dict[str, list[float]] = {}
    # Texts not stored, then stored ones (GPTCache has no exact path: both search).
    for name, texts in (("semantic", probes), ("stored_text", fill[: len(probes)])):
        wall, cpu = timed.setdefault(f"{name}_us", []), timed.setdefault(f"{name}_cpu_us", [])
        for text in texts:
            began, cpu_began = time.perf_counter(), time.process_time()
            get(text, cache_obj=cache)
            wall.append((time.perf_counter() - began) * 1e6)
            cpu.append((time.process_time() - cpu_began) * 1e6)
    return {"size": len(fill), "fill_s": filled_s, **timed}


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    texts = json.loads(Path(job["texts"]).read_text(encoding="utf-8"))
    embed = Vectors(np.load(job["vectors"], allow_pickle=False).astype(np.float32), texts)
    result: dict[str, Any] = {}
    root = Path(tempfile.mkdtemp(prefix="gptcache-bench-"))
    # Registered first, so it runs last: each cache registers a close that flushes its files.
    atexit.register(shutil.rmtree, root, True)
    if "pairs" in job:
        result["pairwise"] = pairwise(job, embed, root)
    if "stored" in job:
        result["populated"] = populated(job, embed, root)
    if "fill" in job:
        result["latency"] = latency(job, embed, root)
    Path(job["out"]).write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main()
