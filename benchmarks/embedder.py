"""Latency of the local sentence embedder (all-MiniLM-L6-v2, int8 ONNX on onnxruntime).

Measures milliseconds per single short query (the semantic-cache lookup path) and per batch of
32 (prompt tests, cache warm-up), after a warm-up, as medians over repeated runs. The PyTorch
peer (sentence-transformers) is not installed here, so the published figures for this model
(LOCAL_MODELS.md: about 12 ms/query PyTorch, 3 ms/query ONNX int8) stand in for it.

Writes benchmarks/results/embedder.json (`value`: median ms per query, `target`: 5) and
benchmarks/results/embedder.md.

    python benchmarks/embedder.py [--threads 1] [--repeats 200]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.cache.embedders import MiniLMEmbedder

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MS_PER_QUERY = 5.0
QUERIES = [
    "How do I reset my password?",
    "Where is my order?",
    "Cancel my subscription please",
    "What are your opening hours on Sunday?",
    "The app crashes when I upload a photo",
    "Can I get a refund for a damaged item?",
    "Do you ship to Canada?",
    "Change the delivery address of my order",
]


def _timed(call: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "min_ms": round(ordered[0], 3),
        "runs": len(ordered),
    }


def run(threads: int, repeats: int) -> dict[str, Any]:
    embedder = MiniLMEmbedder(threads=threads)
    start = time.perf_counter()
    embedder.load()
    load_ms = (time.perf_counter() - start) * 1000

    batch = [f"{QUERIES[i % len(QUERIES)]} (#{i})" for i in range(32)]
    embedder.embed(QUERIES + batch)  # warm-up: first-run allocations and graph caches
    queries = iter(QUERIES * repeats)
    single = _summary(_timed(lambda: embedder.embed([next(queries)]), repeats))
    batched = _summary(_timed(lambda: embedder.embed(batch), max(10, repeats // 10)))
    per_text = batched["median_ms"] / len(batch)
    return {
        "benchmark": "embedder",
        "metric": "median ms per single short query",
        "value": single["median_ms"],
        "target": TARGET_MS_PER_QUERY,
        "lower_is_better": True,
        "embedder": embedder.name,
        "threads": threads,
        "load_ms": round(load_ms, 1),
        "single_query": single,
        "batch_of_32": {**batched, "ms_per_text": round(per_text, 3)},
        "ratios": {
            "single_vs_target": round(single["median_ms"] / TARGET_MS_PER_QUERY, 3),
            "batched_per_text_vs_single": round(per_text / single["median_ms"], 3),
            "published_pytorch_vs_single": round(12.0 / single["median_ms"], 2),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "onnxruntime": importlib.metadata.version("onnxruntime"),
        },
    }


def markdown(result: dict[str, Any]) -> str:
    single, batched = result["single_query"], result["batch_of_32"]
    machine = result["machine"]
    load = ", ".join(str(x) for x in machine["load_average"])
    return "\n".join(
        [
            f"# Embedder latency: {result['embedder']}",
            "",
            f"onnxruntime {machine['onnxruntime']}, {result['threads']} intra-op thread(s), "
            f"{machine['cpus']} CPUs, load average {load}; model load {result['load_ms']} ms.",
            "",
            "| case | median ms | p95 ms | ms per text | target |",
            "|---|---:|---:|---:|---:|",
            f"| single short query | {single['median_ms']} | {single['p95_ms']} | "
            f"{single['median_ms']} | {result['target']} |",
            f"| batch of 32 | {batched['median_ms']} | {batched['p95_ms']} | "
            f"{batched['ms_per_text']} | |",
            "| published: PyTorch MiniLM (LOCAL_MODELS.md) | | | ≈12 | |",
            "| published: ONNX int8 MiniLM (LOCAL_MODELS.md) | | | ≈3 | |",
            "",
            f"Single query vs target: {result['ratios']['single_vs_target']}x; "
            f"batched per text vs single: {result['ratios']['batched_per_text_vs_single']}x. "
            "Absolute times on a shared machine are noise; compare ratios.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    result = run(args.threads, args.repeats)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "embedder.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (RESULTS / "embedder.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
