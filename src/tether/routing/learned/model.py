"""A trained router: predicts whether the cheap and the premium model will pass a request, and
the file it lives in.

Each probability blends two views of the training data:

- a logistic regression on the sentence vector plus the standardised text features
  (`features.py`): what kind of request tends to fail on that model;
- the k nearest training requests by cosine similarity, their outcomes averaged with a prior of
  `prior_weight` pseudo-rows at the training pass rate: how this very kind of question went.

`blend` weights the two (1.0: regression only), chosen at training time on held-out folds.

The decision reads the expected gain of the premium model, p(premium passes) - p(cheap
passes), not p(cheap passes) alone: a request both models fail is not worth a premium call.
On GSM8K that ranks requests better (held-out APGR 0.64 against 0.61 for p(cheap) alone).
A request goes to premium when its gain is above the threshold.

The file is a NumPy .npz read with `allow_pickle=False`: only plain numeric and byte arrays, so
loading one can never run code. Its `meta` entry (JSON) names the embedder, the `embedding`
("minilm", "minilm-static" or "none", `embedding.py`) and the `max_tokens` cut; a router is
refused with an embedder of another name or settings naming another embedding or cut, since its
vectors would mean something else. A file from before `embedding` was stored reads as "minilm",
uncut: the only kind there was.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tether.errors import ConfigError
from tether.routing.learned.embedding import EMBEDDINGS
from tether.routing.learned.features import FEATURE_NAMES

FORMAT = "tether-router"
VERSION = 1
NEVER_PREMIUM = 1.0  # thresholds: a gain is never above 1.0 ...
ALWAYS_PREMIUM = -1.5  # ... and always above -1.5
_ARRAYS = (
    "weights", "biases", "feature_mean", "feature_scale", "neighbours", "cheap", "premium",
    "holdout_scores", "text_bytes", "text_offsets",
)  # fmt: skip

Floats32 = NDArray[np.float32]


def embedder_mismatch(path: Path, field: str, trained: object, used: str) -> ConfigError:
    return ConfigError(
        f"trained on embedder {trained!r}, but the router uses {used!r}: "
        "its vectors are not comparable",
        file=str(path),
        field=field,
        fix="set the router's `embedder` to the one it was trained on, or train it again",
    )


@dataclass(frozen=True)
class Prediction:
    p_cheap: float
    p_premium: float
    neighbours: tuple[tuple[int, float], ...]  # (training row, cosine), nearest first

    @property
    def gain(self) -> float:
        return self.p_premium - self.p_cheap


@dataclass(eq=False)
class TrainedRouter:
    embedder: str
    dimensions: int
    weights: Floats32  # (2, dimensions + len(FEATURE_NAMES)): the cheap head, the premium head
    biases: Floats32  # (2,)
    feature_mean: Floats32
    feature_scale: Floats32
    neighbours: Floats32  # training vectors, one row per training request
    cheap: NDArray[np.bool_]  # whether the cheap model passed each training request
    premium: NDArray[np.bool_]
    holdout_scores: Floats32  # each training row's gain from a model that never saw it
    k: int
    prior_weight: float
    blend: float
    threshold: float
    texts: tuple[str, ...] = ()  # training texts, cut short, for `tether route explain`
    embedding: str = "minilm"  # how texts become vectors (`embedding.py`)
    max_tokens: int | None = None  # texts cut after this many tokens before embedding
    info: dict[str, Any] = field(default_factory=dict)  # training facts, shown by `route eval`

    def predict(self, vectors: Floats32, features: Floats32, *, top: int = 0) -> list[Prediction]:
        """Both models' pass probabilities per row; `top` nearest neighbours kept to explain."""
        scaled = (features - self.feature_mean) / self.feature_scale
        logits = np.concatenate([vectors, scaled], axis=1) @ self.weights.T + self.biases
        linear = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))  # (rows, 2)
        priors = np.array([self.cheap.mean(), self.premium.mean()], dtype=np.float32)
        similarity = vectors @ self.neighbours.T
        k = min(self.k, similarity.shape[1])
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        out = []
        for row in range(len(vectors)):
            idx = nearest[row]
            sims = np.maximum(similarity[row, idx], 0.0)
            labels = np.stack([self.cheap[idx], self.premium[idx]], axis=1).astype(np.float32)
            knn = (sims @ labels + self.prior_weight * priors) / (sims.sum() + self.prior_weight)
            p = self.blend * linear[row] + (1 - self.blend) * knn
            shown: tuple[tuple[int, float], ...] = ()
            if top:
                order = idx[np.argsort(-similarity[row, idx], kind="stable")][:top]
                shown = tuple((int(i), float(similarity[row, i])) for i in order)
            out.append(Prediction(float(p[0]), float(p[1]), shown))
        return out

    # -- thresholds ---------------------------------------------------------------------------

    def threshold_for_share(self, premium_share: float) -> float:
        """The threshold that sends `premium_share` of the training requests to premium
        (measured on held-out scores)."""
        if premium_share <= 0:
            return NEVER_PREMIUM
        if premium_share >= 1:
            return ALWAYS_PREMIUM
        return float(np.quantile(self.holdout_scores, 1 - premium_share))

    def threshold_for_quality(self, target: float) -> float:
        """The highest threshold (fewest premium calls) whose routed accuracy on the training
        requests reaches `target` x the premium model's accuracy (held-out scores)."""
        goal = target * float(self.premium.mean())
        order = np.argsort(-self.holdout_scores, kind="stable")
        scores = self.holdout_scores[order]
        # Sending the i highest-gain requests to premium changes accuracy by the running sum.
        gained = np.cumsum(self.premium[order].astype(np.int64) - self.cheap[order])
        accuracy = (self.cheap.sum() + np.concatenate([[0], gained])) / len(scores)
        reached = np.flatnonzero(accuracy >= goal - 1e-12)
        if len(reached) == 0:
            return ALWAYS_PREMIUM
        sent = int(reached[0])  # how many go to premium
        if sent == 0:
            return NEVER_PREMIUM
        if sent == len(scores):
            return ALWAYS_PREMIUM
        return float((scores[sent - 1] + scores[sent]) / 2)

    # -- the file -----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        encoded = [t.encode("utf-8") for t in self.texts]
        offsets = np.cumsum([0, *map(len, encoded)]).astype(np.int64)
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "embedder": self.embedder,
            "embedding": self.embedding,
            "max_tokens": self.max_tokens,
            "dimensions": self.dimensions,
            "features": list(FEATURE_NAMES),
            "k": self.k,
            "prior_weight": self.prior_weight,
            "blend": self.blend,
            "threshold": self.threshold,
            "info": self.info,
        }
        arrays: dict[str, Any] = {
            "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
            "weights": self.weights.astype(np.float32),
            "biases": self.biases.astype(np.float32),
            "feature_mean": self.feature_mean.astype(np.float32),
            "feature_scale": self.feature_scale.astype(np.float32),
            "neighbours": self.neighbours.astype(np.float16),
            "cheap": self.cheap.astype(np.uint8),
            "premium": self.premium.astype(np.uint8),
            "holdout_scores": self.holdout_scores.astype(np.float32),
            "text_bytes": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            "text_offsets": offsets,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        embedder: str | None = None,
        embedding: str | None = None,
        max_tokens: int | None = None,
        field: str = "path",
    ) -> TrainedRouter:
        """Read a router file; ConfigError naming the file when it is missing, corrupt, from
        another format version, or trained on another embedder (with `embedder`), another
        embedding (with `embedding`) or another token cut (with `max_tokens`)."""

        def bad(message: str, fix: str = "train it again with `tether route train`") -> ConfigError:
            return ConfigError(message, file=str(path), field=field, fix=fix)

        try:
            with np.load(path, allow_pickle=False) as npz:
                missing = [name for name in ("meta", *_ARRAYS) if name not in npz.files]
                if missing:
                    raise bad(f"not a router file: no {missing[0]!r} array")
                arrays = {name: npz[name] for name in ("meta", *_ARRAYS)}
        except FileNotFoundError:
            raise bad("router file not found") from None
        except (OSError, ValueError, EOFError, AttributeError, zipfile.BadZipFile) as exc:
            # allow_pickle=False turns an object array into ValueError: nothing is unpickled.
            raise bad(f"not a readable router file ({type(exc).__name__}: {exc})") from None
        try:
            meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise bad("not a router file: its meta entry is not JSON") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise bad("not a router file: wrong format marker")
        if meta.get("version") != VERSION:
            raise bad(f"router file version {meta.get('version')!r}; this tether reads {VERSION}")
        if embedder is not None and meta.get("embedder") != embedder:
            raise embedder_mismatch(path, field, meta.get("embedder"), embedder)
        trained = (str(meta.get("embedding", "minilm")), meta.get("max_tokens"))
        if (embedding is not None and embedding != trained[0]) or (
            max_tokens is not None and max_tokens != trained[1]
        ):
            wanted = (embedding or trained[0], max_tokens if max_tokens is not None else trained[1])
            raise bad(
                f"trained with embedding {trained[0]!r}, max_tokens {trained[1]!r}, but the router "
                f"uses embedding {wanted[0]!r}, max_tokens {wanted[1]!r}: its vectors are not "
                "comparable",
                fix=f"set the router's `embedding` = {trained[0]!r} and "
                + (
                    "leave `max_tokens` unset"
                    if trained[1] is None
                    else f"`max_tokens` = {trained[1]}"
                )
                + " (or leave both unset: the file's are used), or train it again with yours",
            )
        return cls._from_arrays(meta, arrays, bad)

    @classmethod
    def _from_arrays(cls, meta: dict[str, Any], arrays: dict[str, Any], bad: Any) -> TrainedRouter:
        try:
            dimensions = int(meta["dimensions"])
            neighbours = arrays["neighbours"].astype(np.float32)
            weights = arrays["weights"].astype(np.float32)
            n = len(neighbours)
            consistent = (
                meta["features"] == list(FEATURE_NAMES)
                and meta.get("embedding", "minilm") in EMBEDDINGS
                and (meta.get("max_tokens") is None or int(meta["max_tokens"]) >= 3)
                and neighbours.ndim == 2
                and neighbours.shape[1] == dimensions
                and weights.shape == (2, dimensions + len(FEATURE_NAMES))
                and arrays["biases"].shape == (2,)
                and arrays["feature_mean"].shape == arrays["feature_scale"].shape
                and arrays["feature_mean"].shape == (len(FEATURE_NAMES),)
                and len(arrays["cheap"]) == len(arrays["premium"]) == n
                and len(arrays["holdout_scores"]) == n
                and n > 0
                and np.all(np.isfinite(weights))
            )
            if not consistent:
                raise bad("router file is inconsistent (array shapes or feature list differ)")
            offsets = arrays["text_offsets"]
            raw = arrays["text_bytes"].tobytes()
            texts = tuple(
                raw[int(a) : int(b)].decode("utf-8", "replace") for a, b in pairwise(offsets)
            )
            return cls(
                embedder=str(meta["embedder"]),
                dimensions=dimensions,
                weights=weights,
                biases=arrays["biases"].astype(np.float32),
                feature_mean=arrays["feature_mean"].astype(np.float32),
                feature_scale=arrays["feature_scale"].astype(np.float32),
                neighbours=neighbours,
                cheap=arrays["cheap"].astype(bool),
                premium=arrays["premium"].astype(bool),
                holdout_scores=arrays["holdout_scores"].astype(np.float32),
                k=int(meta["k"]),
                prior_weight=float(meta["prior_weight"]),
                blend=float(meta["blend"]),
                threshold=float(meta["threshold"]),
                texts=texts,
                embedding=str(meta.get("embedding", "minilm")),
                max_tokens=None if meta.get("max_tokens") is None else int(meta["max_tokens"]),
                info=dict(meta.get("info") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"router file is inconsistent: {type(exc).__name__}: {exc}") from None
