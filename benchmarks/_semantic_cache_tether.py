"""tether's side of benchmarks/semantic_cache.py: a `ResponseCache` (the pipeline's cache stage)
on a local backend, filled directly with precomputed vectors and looked up the way a request is.

Every lookup goes through `ResponseCache.lookup(ctx)`: the exact key, then the text embedded by
the cache's own MiniLM embedder (one onnxruntime thread), the namespace's neighbours, guards,
the scorer and the calibrated threshold. Filling skips the model call and the embedding: each
entry is filed under the exact key and namespace a request with that text gets, with its
vector computed beforehand in batch.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from tether.cache.backends.local import LocalBackend
from tether.cache.cache import ResponseCache
from tether.cache.config import CacheSettings, SemanticSettings
from tether.cache.embedding import CacheEmbedder
from tether.cache.entry import Answer, Entry
from tether.cache.keys import normalize
from tether.messages import Message
from tether.pipeline.context import Ask, Context

MODEL = "bench-model"
TTL_S = 7 * 86400.0
# Exact hits cost microseconds: one pass over the probes leaves p99 to a handful of samples and
# the machine's stray interruptions; several passes measure the tail of the hits themselves.
EXACT_PASSES = 5


def new_cache(max_entries: int, delta: float) -> tuple[ResponseCache, LocalBackend]:
    """A semantic ResponseCache (default guards, neighbours and scorer) on an in-memory local
    backend (no SQLite file: its writer thread would share the one core with the lookups)."""
    settings = CacheSettings(
        mode="semantic", max_entries=max_entries, semantic=SemanticSettings(delta=delta)
    )
    backend = LocalBackend(None, max_entries=max_entries)
    # The bundled embedder needs neither the provider pool nor the settings' models.
    embedder = CacheEmbedder("minilm", cast(Any, None), cast(Any, None))
    cache = ResponseCache(
        settings, backend=lambda: backend, embedder=lambda: embedder, grades=lambda: None
    )
    return cache, backend


def context(text: str) -> Context:
    messages = (Message("user", text),)
    return Context(Ask("chat.completions", messages=messages), messages=messages, model=MODEL)


async def fill(
    cache: ResponseCache, backend: LocalBackend, texts: list[str], vectors: NDArray[np.float32],
    on_progress: Any = None,
) -> list[str]:  # fmt: skip
    """File one entry per text (answer: its index); the exact keys, in order."""
    now = time.time()
    keys: list[str] = []
    for index, text in enumerate(texts):
        found = cache.filed_under(context(text))
        entry = Entry(
            key=found.key,
            namespace=found.namespace,
            scope=found.scope,
            prompt=None,
            version=None,
            model=MODEL,
            text=found.text,
            answer=Answer((str(index),), None, MODEL, MODEL, "bench"),
            created_at=now,
            expires_at=now + TTL_S,
            cost_usd=0.001,
            latency_s=1.0,
            vector=vectors[index],
        )
        await backend.put(entry)
        keys.append(found.key)
        if on_progress is not None and index % 500 == 0:
            on_progress(index + 1)
    if on_progress is not None:
        on_progress(len(texts))
    return keys


@dataclass(frozen=True)
class Found:
    kind: str  # the decision: exact, semantic or miss
    served: int | None  # the index of the entry served
    best: int | None  # the index of the best neighbour looked at (served or not)
    score: float | None  # its score
    similarity: float | None
    vetoed_by: str | None
    seconds: float  # the whole lookup: wall time ...
    cpu_seconds: float  # ... and the process's CPU time (every thread; one core pinned)


async def lookup(cache: ResponseCache, text: str) -> Found:
    ctx = context(text)
    began, cpu = time.perf_counter(), time.process_time()
    entry = await cache.lookup(ctx)
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    decision = ctx.cache
    pending = cache._pending.pop(ctx.request_id, None)  # what a request's end would take
    assert decision is not None
    served = int(entry.answer.choices[0]) if entry is not None else None
    best = served
    if entry is None and pending is not None and pending.neighbour is not None:
        best = int(pending.neighbour.entry.answer.choices[0])
    return Found(decision.kind, served, best, decision.score, decision.similarity,
                 decision.vetoed_by, seconds, cpu_seconds)  # fmt: skip


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _timed_lookups(cache: ResponseCache, texts: list[str]) -> list[Found]:
    return [await lookup(cache, text) for text in texts]


async def _timed_embeddings(cache: ResponseCache, texts: list[str]) -> tuple[list[float], ...]:
    wall, cpu = [], []
    for text in texts:
        began, cpu_began = time.perf_counter(), time.process_time()
        await cache.embedder.vector(text)
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - cpu_began)
    return wall, cpu


class Parts:
    """Times two parts of every lookup while it runs: the cache's embedding of the text and
    the backend's index search (its thread hand-off included). Timed inside whole lookups,
    each part runs after the other has used the CPU caches, unlike the same work in a loop."""

    def __init__(self, cache: ResponseCache, backend: LocalBackend) -> None:
        self.times: dict[str, tuple[list[float], list[float]]] = {
            "embedding_in_lookup": ([], []), "search_in_lookup": ([], [])}  # fmt: skip
        self._patched = [(cache.embedder, "vector", "embedding_in_lookup"),
                         (backend, "search", "search_in_lookup")]  # fmt: skip
        for owner, method, name in self._patched:
            setattr(owner, method, self._timed(getattr(owner, method), *self.times[name]))

    @staticmethod
    def _timed(call: Any, wall: list[float], cpu: list[float]) -> Any:
        async def timed(*args: Any) -> Any:
            began, cpu_began = time.perf_counter(), time.process_time()
            result = await call(*args)
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - cpu_began)
            return result

        return timed

    def stop(self) -> dict[str, list[float]]:
        for owner, method, _ in self._patched:
            delattr(owner, method)  # the class's own method again
        out: dict[str, list[float]] = {}
        for name, (wall, cpu) in self.times.items():
            out[f"{name}_s"], out[f"{name}_cpu_s"] = wall, cpu
        return out


class Ready:
    """The cache's embedder with the probes' vectors at hand: a lookup without the model."""

    def __init__(self, real: CacheEmbedder, texts: list[str], vectors: NDArray[np.float32]):
        self.real = real
        self.rows = {normalize(t): v for t, v in zip(texts, vectors, strict=True)}

    @property
    def name(self) -> str:
        return self.real.name

    async def vector(self, text: str) -> NDArray[np.float32]:
        return self.rows[text]  # the lookup's text, normalised as the keys normalise it


async def measure_latency(
    size: int, texts: list[str], vectors: NDArray[np.float32], probes: list[str],
    probe_vectors: NDArray[np.float32], delta: float, on_progress: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Fill one namespace with `size` entries; time a lookup of each probe (semantic: texts not
    stored) and of as many stored texts (exact hits), the embedding alone, and the probes'
    lookups again with their vectors at hand (everything but the model); exact hits over
    EXACT_PASSES passes."""
    cache, backend = new_cache(size + 16, delta)
    began = time.perf_counter()
    await fill(cache, backend, texts[:size], vectors[:size], on_progress)
    filled_s = time.perf_counter() - began
    await _timed_lookups(cache, probes[:20])  # warm-up: the model, the threshold, the thread
    parts = Parts(cache, backend)
    semantic = await _timed_lookups(cache, probes)
    in_lookup = parts.stop()
    stored = texts[: len(probes)] * EXACT_PASSES
    await _timed_lookups(cache, stored[:20])  # warm-up of the exact path alone
    exact = await _timed_lookups(cache, stored)
    # The same exact hits with the garbage collector paused: what its collections add to p99.
    gc.collect()
    gc.disable()
    try:
        exact_no_gc = await _timed_lookups(cache, stored)
    finally:
        gc.enable()
    embedding, embedding_cpu = await _timed_embeddings(cache, probes)
    cache._embedder = cast(Any, Ready(cache.embedder, probes, probe_vectors))
    unembedded = await _timed_lookups(cache, probes)
    await cache.close()
    kinds: dict[str, int] = {}
    for found in semantic:
        kinds[found.kind] = kinds.get(found.kind, 0) + 1
    assert all(found.kind == "exact" for found in exact), "stored texts must hit exactly"
    return {
        "entries": size,
        "fill_s": filled_s,
        "semantic_s": [found.seconds for found in semantic],
        "semantic_cpu_s": [found.cpu_seconds for found in semantic],
        "semantic_kinds": kinds,
        "exact_s": [found.seconds for found in exact],
        "exact_cpu_s": [found.cpu_seconds for found in exact],
        "exact_no_gc_s": [found.seconds for found in exact_no_gc],
        "exact_no_gc_cpu_s": [found.cpu_seconds for found in exact_no_gc],
        "embedding_s": embedding,
        "embedding_cpu_s": embedding_cpu,
        "without_embedding_s": [found.seconds for found in unembedded],
        "without_embedding_cpu_s": [found.cpu_seconds for found in unembedded],
        **in_lookup,
    }
