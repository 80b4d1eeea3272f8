"""Learned routing on RouteLLM's outcomes: cost against quality, APGR, decision time.

Method. For GSM8K and MMLU (../shared/data/routing, RouteLLM@0b64fda; Mixtral-8x7B-Instruct is
the cheap model, GPT-4-1106 the premium one) the rows are split into FOLDS parts by a seeded
shuffle (numpy default_rng(SEED)). Each part in turn is the test split: the routers are trained
on the other parts and score it, so every row gets a score from a router that never saw it.
The curve and APGR are then computed over all rows as RouteLLM computes them over a whole
benchmark (tether.routing.learned.evaluation: thresholds at the 0..100th percentiles in steps
of 10, APGR by trapezoids between the cheap and premium accuracies).

Routers, side by side:
- learned (VARIANT): tether's router (`tether route train`): a sentence vector + text features,
  logistic regression and kNN, score = p(premium passes) - p(cheap passes). The variants differ
  in how a text becomes its vector (the router's `embedding` and `max_tokens` settings):
  minilm: the whole MiniLM transformer (the original configuration); minilm-K: MiniLM on the
  first K tokens only; minilm-static: the mean of MiniLM's input token embeddings, no
  transformer; none: the text features alone;
- tfidf-logistic: TF-IDF words and word pairs, logistic regression on "cheap passes";
- random: a uniform score per row (seeded); the expected APGR is 0.5;
- always-premium: one point, 100% premium calls at the premium model's accuracy.

Decision time: per variant, one learned policy (trained on the first split's training part)
decides for LATENCY_REQUESTS test requests with the process pinned to one core, one BLAS thread
(OPENBLAS_NUM_THREADS=1) and a one-thread MiniLM session; the time covers the whole `decide`,
embedding included.

    python benchmarks/routing.py [--data ../shared/data] [--sets gsm8k mmlu]
        [--variants minilm minilm-64 minilm-32 minilm-static none] [--skip mmlu:minilm-128]

Writes results/routing.json (`value`: the CHOSEN variant's APGR on GSM8K), routing.md and the
curves in routing.png.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from _results import (
    REPO_ROOT,
    base_parser,
    console,
    fmt,
    machine,
    percentile,
    progress,
    utc_now,
    versions,
    write_results,
)
from _routing_data import TfidfLogistic, benchmark_files, folds_of, read_routellm
from tether.cache.embedders import Embedder, MiniLMEmbedder
from tether.messages import Message
from tether.routing.base import RouteInput
from tether.routing.learned.dataset import Outcomes
from tether.routing.learned.embedding import Embedding, router_embedder
from tether.routing.learned.evaluation import Curve, cost_quality_curve
from tether.routing.learned.features import text_features
from tether.routing.learned.train import TrainOptions, embed_texts, route_text, train_router
from tether.routing.policies.learned import LearnedPolicy

NAME = "routing"
SEED = 20240601
FOLDS = 5
LATENCY_REQUESTS = 300
TARGETS = {"gsm8k": 0.65, "mmlu": 0.55}
P99_TARGET_MS = 5.0
BASELINE_APGR = {"gsm8k": 0.59, "mmlu": 0.45}  # TF-IDF logistic, as measured before this work
CACHE = Path.home() / ".cache" / "tether" / "routing-bench"
# variant -> (embedding, max_tokens): the learned router's settings
VARIANTS: dict[str, tuple[Embedding, int | None]] = {
    "minilm": ("minilm", None),
    "minilm-128": ("minilm", 128),
    "minilm-64": ("minilm", 64),
    "minilm-32": ("minilm", 32),
    "minilm-static": ("minilm-static", None),
    "minilm-static-64": ("minilm-static", 64),
    "none": ("none", None),
}
DEFAULT_VARIANTS = (
    "minilm", "minilm-128", "minilm-64", "minilm-32", "minilm-static", "none",
)  # fmt: skip
CHOSEN = "minilm-static"  # the learned router's default embedding (routing/learned/embedding.py)


def cached_vectors(embedder: Embedder, outcomes: Outcomes, name: str) -> NDArray[np.float32]:
    """Sentence vectors of every text, kept on disk by content hash (MMLU takes minutes)."""
    digest = hashlib.sha256(
        "\0".join([embedder.name, *outcomes.texts]).encode("utf-8")
    ).hexdigest()[:16]
    path = CACHE / f"{name}-{digest}.npy"
    if path.exists():
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
    with progress() as bar:
        task = bar.add_task(f"embedding {name}", total=len(outcomes), status="")
        vectors = embed_texts(
            embedder, outcomes.texts, progress=lambda _s, done, _t: bar.update(task, completed=done)
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def baseline_scores(outcomes: Outcomes) -> dict[str, NDArray[np.float64]]:
    """TF-IDF logistic regression (cross-fitted as the learned router) and random scores."""
    n = len(outcomes)
    cheap = np.asarray(outcomes.cheap)
    scores = {"tfidf-logistic": np.zeros(n), "random": np.random.default_rng(SEED).random(n)}
    for test in folds_of(n, FOLDS, SEED):
        train = np.setdiff1d(np.arange(n), test)
        tfidf = TfidfLogistic().fit([outcomes.texts[i] for i in train], cheap[train])
        scores["tfidf-logistic"][test] = tfidf.premium_scores([outcomes.texts[i] for i in test])
    return scores


def cross_fitted_scores(
    outcomes: Outcomes, vectors: NDArray[np.float32], model: MiniLMEmbedder, name: str,
    options: TrainOptions,
) -> tuple[NDArray[np.float64], LearnedPolicy, list[int]]:  # fmt: skip
    """The learned router's held-out gain for every row, and the first split's policy."""
    n = len(outcomes)
    scores = np.zeros(n)
    embedder = router_embedder(options.embedding, options.max_tokens, model)
    first: LearnedPolicy | None = None
    first_test: list[int] = []
    with progress() as bar:
        task = bar.add_task(f"training on {name}", total=FOLDS, status="")
        for index, test in enumerate(folds_of(n, FOLDS, SEED)):
            train = np.setdiff1d(np.arange(n), test)
            part = outcomes.subset(train)
            router = train_router(part, model, options, vectors=vectors[train])
            test_texts = [outcomes.texts[i] for i in test]
            predictions = router.predict(
                vectors[test], text_features([route_text(t) for t in test_texts])
            )
            scores[test] = [p.gain for p in predictions]
            if first is None:
                policy = LearnedPolicy(router, embedder, cheap="cheap", premium="premium")
                first, first_test = policy, [int(i) for i in test]
            bar.update(task, advance=1, status=f"split {index + 1}")
    assert first is not None
    return scores, first, first_test


def decision_times_ms(policy: LearnedPolicy, texts: list[str]) -> dict[str, list[float]]:
    """Per request: wall and CPU time of the whole `decide` (embedding included), and the CPU
    time of the router's own part (features, regression, kNN) alone; pinned to one core."""
    pinned = hasattr(os, "sched_setaffinity")
    before = os.sched_getaffinity(0) if pinned else set()
    if pinned:
        os.sched_setaffinity(0, {max(before)})
    try:
        for text in texts[:10]:  # warm-up: the first calls load the model and allocate
            policy.decide(RouteInput(messages=(Message("user", text),)))
        times: dict[str, list[float]] = {"wall": [], "cpu": [], "router_only": []}
        for text in texts:
            request = RouteInput(messages=(Message("user", text),))
            wall, cpu = time.perf_counter(), time.thread_time()
            policy.decide(request)
            times["cpu"].append((time.thread_time() - cpu) * 1000)
            times["wall"].append((time.perf_counter() - wall) * 1000)
            vector = policy.embedder.embed([route_text(text)])
            started = time.thread_time()
            policy.router.predict(vector, text_features([route_text(text)]))
            times["router_only"].append((time.thread_time() - started) * 1000)
        return {key: sorted(values) for key, values in times.items()}
    finally:
        if pinned:
            os.sched_setaffinity(0, before)


def summarise(curve: Curve) -> dict[str, Any]:
    return {
        "apgr": curve.apgr(),
        "premium_share_for_50pct_gap": curve.share_for_gap(0.5),
        "premium_share_for_80pct_gap": curve.share_for_gap(0.8),
        "curve": curve.points(),
    }


def run_set(name: str, data: Path, model: MiniLMEmbedder, variants: list[str]) -> dict[str, Any]:
    outcomes = read_routellm(benchmark_files(data, name))
    cheap, premium = np.asarray(outcomes.cheap), np.asarray(outcomes.premium)
    console.print(
        f"{name}: {len(outcomes)} rows, cheap {cheap.mean():.3f}, premium {premium.mean():.3f}"
    )
    routers: dict[str, dict[str, Any]] = {}
    decision_ms: dict[str, dict[str, Any]] = {}
    chosen_k_blend: dict[str, list[float]] = {}
    timing_model = MiniLMEmbedder(threads=1)
    for variant in variants:
        embedding, max_tokens = VARIANTS[variant]
        options = TrainOptions(seed=SEED, embedding=embedding, max_tokens=max_tokens)
        vectors = cached_vectors(router_embedder(embedding, max_tokens, model), outcomes, name)
        scores, policy, test = cross_fitted_scores(outcomes, vectors, model, name, options)
        routers[f"learned ({variant})"] = summarise(cost_quality_curve(scores, cheap, premium))
        chosen_k_blend[variant] = [policy.router.k, policy.router.blend]
        timing_policy = LearnedPolicy(
            policy.router,
            router_embedder(embedding, max_tokens, timing_model),
            cheap="cheap",
            premium="premium",
        )
        texts = [outcomes.texts[i] for i in test][:LATENCY_REQUESTS]
        times = decision_times_ms(timing_policy, texts)
        decision_ms[variant] = {
            "requests": len(texts),
            "p50": percentile(times["wall"], 50),
            "p99": percentile(times["wall"], 99),
            "max": times["wall"][-1],
            "cpu_p50": percentile(times["cpu"], 50),
            "cpu_p99": percentile(times["cpu"], 99),
            "router_only_p50": percentile(times["router_only"], 50),
            "router_only_p99": percentile(times["router_only"], 99),
        }
        ms = decision_ms[variant]
        console.print(
            f"  {variant}: APGR {routers[f'learned ({variant})']['apgr']:.3f}, "
            f"decision CPU p50/p99 {ms['cpu_p50']:.2f}/{ms['cpu_p99']:.2f} ms"
        )
    for key, s in baseline_scores(outcomes).items():
        routers[key] = summarise(cost_quality_curve(s, cheap, premium))
    routers["always-premium"] = {
        "apgr": None,
        "premium_share_for_50pct_gap": 1.0,
        "premium_share_for_80pct_gap": 1.0,
        "curve": [{"threshold": None, "premium_share": 1.0, "accuracy": float(premium.mean())}],
    }
    return {
        "rows": len(outcomes),
        "cheap_accuracy": float(cheap.mean()),
        "premium_accuracy": float(premium.mean()),
        "routers": routers,
        "learned_apgr_target": TARGETS[name],
        "tfidf_apgr_measured_before": BASELINE_APGR[name],
        "chosen_k_blend_first_split": chosen_k_blend,
        "decision_ms": decision_ms,
    }


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for axis, (name, result) in zip(axes[0], results.items(), strict=True):
        for router, summary in result["routers"].items():
            xs = [100 * p["premium_share"] for p in summary["curve"]]
            ys = [100 * p["accuracy"] for p in summary["curve"]]
            label = f"{router} (APGR {fmt(summary['apgr'])})"
            axis.plot(xs, ys, marker="*" if len(xs) == 1 else ".", label=label)
        axis.axhline(100 * result["cheap_accuracy"], color="grey", linestyle="--", label="cheap")
        axis.axhline(100 * result["premium_accuracy"], color="red", linestyle="--", label="premium")
        axis.set_title(f"{name} ({result['rows']} prompts, {FOLDS}-fold cross-fitted)")
        axis.set_xlabel("premium calls (%)")
        axis.set_ylabel("accuracy (%)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _times(ms: dict[str, Any], low: str, high: str) -> str:
    return f"{fmt(ms[low], 1)} / {fmt(ms[high], 1)}"


def main() -> None:
    if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        # One core means one BLAS thread too: OpenBLAS threads sharing the pinned core spin
        # against each other and turn a 0.6 ms kNN product into 8 ms at p99. The variable only
        # takes effect before NumPy loads, so the script starts itself again with it.
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else NAME)
    parser.set_defaults(data=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", nargs="+", default=["gsm8k", "mmlu"], choices=sorted(TARGETS))
    parser.add_argument(
        "--variants",
        nargs="+",
        default=list(DEFAULT_VARIANTS),
        choices=list(VARIANTS),
        help="how the learned router embeds a text (embedding and max_tokens)",
    )
    parser.add_argument(
        "--skip", nargs="*", default=[], metavar="SET:VARIANT",
        help="variants left out on one set (each MiniLM cut re-embeds all of MMLU: minutes)",
    )  # fmt: skip
    args = parser.parse_args()
    started = utc_now()
    model = MiniLMEmbedder(threads=max(1, min(2, os.cpu_count() or 1)))
    results = {
        name: run_set(
            name, args.data, model, [v for v in args.variants if f"{name}:{v}" not in args.skip]
        )
        for name in args.sets
    }
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / f"{NAME}.png")
    headline = CHOSEN if CHOSEN in args.variants else args.variants[0]
    learned = {n: r["routers"][f"learned ({headline})"]["apgr"] for n, r in results.items()}
    p99 = max(r["decision_ms"][headline]["cpu_p99"] for r in results.values())
    meets = all(learned[n] >= TARGETS[n] for n in learned) and p99 <= P99_TARGET_MS
    headline_set = "gsm8k" if "gsm8k" in results else next(iter(results))
    payload: dict[str, Any] = {
        "benchmark": NAME,
        "date_utc": started,
        "headline": f"learned router ({headline}) APGR on {headline_set}",
        "value": learned[headline_set],
        "target": TARGETS[headline_set],
        "target_rule": "APGR >= 0.65 on GSM8K and >= 0.55 on MMLU; decision CPU p99 <= 5 ms "
        "on one core",
        "meets_target": meets,
        "chosen_variant": headline,
        "method": (__doc__ or "").split("\n\n    python")[0],
        "seed": SEED,
        "folds": FOLDS,
        "data": str(args.data / "routing"),
        "variants": {v: {"embedding": VARIANTS[v][0], "max_tokens": VARIANTS[v][1]}
                     for v in args.variants},
        "sets": results,
        "machine": machine(),
        "versions": versions("numpy", "onnxruntime", "tokenizers"),
    }  # fmt: skip
    rows = []
    for name, result in results.items():
        for router, summary in result["routers"].items():
            variant = router.removeprefix("learned (").removesuffix(")")
            ms = result["decision_ms"].get(variant)
            rows.append([
                name, router + (" (chosen)" if variant == headline else ""), fmt(summary["apgr"]),
                fmt(summary["premium_share_for_50pct_gap"], 2),
                fmt(summary["premium_share_for_80pct_gap"], 2),
                _times(ms, "p50", "p99") if ms else "",
                _times(ms, "cpu_p50", "cpu_p99") if ms else "",
                _times(ms, "router_only_p50", "router_only_p99") if ms else "",
            ])  # fmt: skip
    notes = [
        f"{name}: cheap (Mixtral-8x7B) {r['cheap_accuracy']:.3f}, premium (GPT-4-1106) "
        f"{r['premium_accuracy']:.3f}; learned target {r['learned_apgr_target']}, TF-IDF "
        f"logistic measured before {r['tfidf_apgr_measured_before']}."
        for name, r in results.items()
    ]
    notes += [
        "Variants (the learned router's `embedding` / `max_tokens`): "
        + "; ".join(f"{v}: {VARIANTS[v][0]} / {VARIANTS[v][1]}" for v in args.variants)
        + f". Chosen: {headline}."
        + (f" Left out: {', '.join(args.skip)}." if args.skip else ""),
        f"{FOLDS}-fold cross-fitting, seed {SEED}: every row scored by routers trained without it.",
        "Decision time: one core (sched_setaffinity), one BLAS thread, one-thread MiniLM, "
        "whole decide() "
        "including embedding (wall and CPU time of the thread); the router part is features, "
        "regression and kNN without the embedding. Absolute times on a shared machine are "
        "noise (the load average is in the JSON): compare the variants of one run.",
        f"Curves: {NAME}.png.",
    ]
    json_path, md_path = write_results(
        NAME,
        args.out,
        payload,
        title="Learned routing on RouteLLM outcomes (Mixtral-8x7B vs GPT-4)",
        header=["set", "router", "APGR", "premium share, 50% of gap", "80% of gap",
                "decide p50 / p99 ms (wall)", "CPU p50 / p99 ms", "router part CPU p50 / p99 ms"],
        rows=rows,
        notes=notes,
    )  # fmt: skip
    console.print(md_path.read_text())
    console.print(f"wrote {json_path}, {md_path} and {args.out / f'{NAME}.png'}")


if __name__ == "__main__":
    main()
