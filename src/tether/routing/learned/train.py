"""Training the learned router from requests with known outcomes.

1. Every text is embedded once and its text features computed.
2. The rows are split into `folds` (seeded shuffle). For each fold, the two logistic
   regressions (cheap passes, premium passes) and the kNN table are built from the other folds
   and score the held-out one, for each candidate `k` and `blend`: every row gets a gain
   (p(premium) - p(cheap)) from models that never saw it.
3. The (k, blend) with the best held-out APGR wins (`evaluation.py`); the final model is fitted
   on every row with it, and the held-out scores are kept in the file to set thresholds.

The regression is plain L2-regularised logistic regression fitted by Newton's method in NumPy:
a few hundred weights need no optimiser library, and the fit is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tether.cache.embedders.base import Embedder
from tether.routing.learned.dataset import Outcomes
from tether.routing.learned.embedding import DEFAULT_EMBEDDING, Embedding, router_embedder
from tether.routing.learned.evaluation import cost_quality_curve
from tether.routing.learned.features import text_features
from tether.routing.learned.model import Floats32, TrainedRouter

MAX_ROUTE_CHARS = 2_000  # what the router reads of a request: its start decides the topic
EXPLAIN_CHARS = 200
K_CANDIDATES = (30, 100, 300)
BLEND_CANDIDATES = (0.0, 0.25, 0.5, 0.75, 1.0)
PRIOR_WEIGHT = 2.0
Progress = Callable[[str, int, int], None]  # (step, done, total)


@dataclass(frozen=True)
class TrainOptions:
    folds: int = 5
    seed: int = 0
    l2: float = 3.0
    target_quality: float | None = None
    target_premium_share: float | None = None
    batch: int = 64
    # The first EXPLAIN_CHARS characters of each training text go into the router file, for
    # `tether route explain`; off when the texts (e.g. from the request log) must not travel.
    keep_texts: bool = True
    # How texts become vectors (`embedding.py`; the static MiniLM by default): "minilm" runs
    # the embedder given to `train_router`; "minilm-static" and "none" bring their own.
    embedding: Embedding = DEFAULT_EMBEDDING
    max_tokens: int | None = None  # cut each text after this many tokens before embedding


def route_text(text: str) -> str:
    return text[:MAX_ROUTE_CHARS]


def embed_texts(
    embedder: Embedder, texts: Sequence[str], *, batch: int = 64, progress: Progress | None = None
) -> Floats32:
    out = np.zeros((len(texts), embedder.dimensions), dtype=np.float32)
    for start in range(0, len(texts), batch):
        chunk = [route_text(t) for t in texts[start : start + batch]]
        out[start : start + len(chunk)] = embedder.embed(chunk)
        if progress is not None:
            progress("embedding", start + len(chunk), len(texts))
    return out


def fit_logistic(x: Floats32, y: NDArray[np.bool_], *, l2: float) -> tuple[Floats32, float]:
    """Weights and bias minimising log loss + l2/2 |w|^2 (the bias is not penalised)."""
    n, d = x.shape
    design = np.concatenate([x.astype(np.float64), np.ones((n, 1))], axis=1)
    target = y.astype(np.float64)
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -30, 30)))
        gradient = design.T @ (p - target) + penalty * w
        curvature = np.maximum(p * (1 - p), 1e-6)
        hessian = (design * curvature[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return w[:-1].astype(np.float32), float(w[-1])


def _standardise(features: Floats32) -> tuple[Floats32, Floats32]:
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    return mean.astype(np.float32), np.where(scale > 1e-6, scale, 1.0).astype(np.float32)


def _router(
    vectors: Floats32,
    features: Floats32,
    outcomes: Outcomes,
    rows: NDArray[np.int64],
    *,
    embedder: str,
    l2: float,
    k: int,
    blend: float,
) -> TrainedRouter:
    mean, scale = _standardise(features[rows])
    design = np.concatenate([vectors[rows], (features[rows] - mean) / scale], axis=1)
    cheap = np.asarray(outcomes.cheap, dtype=bool)[rows]
    premium = np.asarray(outcomes.premium, dtype=bool)[rows]
    heads = [fit_logistic(design, labels, l2=l2) for labels in (cheap, premium)]
    return TrainedRouter(
        embedder=embedder,
        dimensions=vectors.shape[1],
        weights=np.stack([w for w, _ in heads]),
        biases=np.array([b for _, b in heads], dtype=np.float32),
        feature_mean=mean,
        feature_scale=scale,
        neighbours=vectors[rows],
        cheap=cheap,
        premium=premium,
        holdout_scores=np.zeros(len(rows), dtype=np.float32),
        k=k,
        prior_weight=PRIOR_WEIGHT,
        blend=blend,
        threshold=0.5,
    )


def _gains(router: TrainedRouter, vectors: Floats32, features: Floats32) -> Floats32:
    return np.array([p.gain for p in router.predict(vectors, features)], dtype=np.float32)


def _held_out_scores(
    vectors: Floats32,
    features: Floats32,
    outcomes: Outcomes,
    options: TrainOptions,
    embedder: str,
    progress: Progress | None,
) -> dict[tuple[int, float], Floats32]:
    """The gain of every row from the folds that exclude it, per (k, blend)."""
    n = len(outcomes)
    order = np.random.default_rng(options.seed).permutation(n)
    folds = np.array_split(order, min(options.folds, n))
    scores = {(k, b): np.zeros(n, dtype=np.float32) for k in K_CANDIDATES for b in BLEND_CANDIDATES}
    for index, held in enumerate(folds):
        kept = np.setdiff1d(order, held)
        router = _router(
            vectors, features, outcomes, kept, embedder=embedder, l2=options.l2, k=1, blend=1.0
        )
        linear = _gains(router, vectors[held], features[held])
        router.blend = 0.0
        for k in K_CANDIDATES:
            router.k = k
            knn = _gains(router, vectors[held], features[held])
            for b in BLEND_CANDIDATES:
                scores[(k, b)][held] = b * linear + (1 - b) * knn
        if progress is not None:
            progress("cross-validating", index + 1, len(folds))
    return scores


def train_router(
    outcomes: Outcomes,
    embedder: Embedder,
    options: TrainOptions = TrainOptions(),
    *,
    progress: Progress | None = None,
    vectors: Floats32 | None = None,
) -> TrainedRouter:
    """A router fitted on every row, its (k, blend) and threshold chosen on held-out folds.

    `embedder` is the sentence model of `options.embedding` "minilm" (the other embeddings
    bring their own). `vectors` skips the embedding step when the caller has them (one row per
    text, from `router_embedder(options.embedding, options.max_tokens, embedder)`)."""
    embedder = router_embedder(options.embedding, options.max_tokens, embedder)
    texts = outcomes.texts
    if vectors is None:
        vectors = embed_texts(embedder, texts, batch=options.batch, progress=progress)
    features = text_features([route_text(t) for t in texts])
    cheap = np.asarray(outcomes.cheap, dtype=bool)
    premium = np.asarray(outcomes.premium, dtype=bool)
    held = _held_out_scores(vectors, features, outcomes, options, embedder.name, progress)

    def quality(key: tuple[int, float]) -> float:
        apgr = cost_quality_curve(held[key], cheap, premium).apgr()
        return apgr if np.isfinite(apgr) else 0.0

    best = max(held, key=quality)
    k, blend = best
    router = _router(
        vectors,
        features,
        outcomes,
        np.arange(len(outcomes)),
        embedder=embedder.name,
        l2=options.l2,
        k=k,
        blend=blend,
    )
    router.holdout_scores = held[best]
    router.embedding = options.embedding
    router.max_tokens = options.max_tokens
    router.texts = tuple(t[:EXPLAIN_CHARS] for t in texts) if options.keep_texts else ()
    router.threshold = _threshold(router, options)
    router.info = {
        "rows": len(outcomes),
        "cheap_accuracy": float(cheap.mean()),
        "premium_accuracy": float(premium.mean()),
        "folds": options.folds,
        "seed": options.seed,
        "held_out_apgr": quality(best),
        "target_quality": options.target_quality,
        "target_premium_share": options.target_premium_share,
    }
    return router


def _threshold(router: TrainedRouter, options: TrainOptions) -> float:
    if options.target_premium_share is not None:
        return router.threshold_for_share(options.target_premium_share)
    # Default: keep 95% of the premium model's quality, the usual operating point.
    return router.threshold_for_quality(options.target_quality or 0.95)
