"""The pair scorer: how likely a cached text's answer is right for a new text.

Cosine similarity of sentence embeddings alone ranks "shares close higher on Tuesday" next to
"shares close lower on Wednesday". The scorer reads the cosine beside a few lexical features of
the pair (content-word overlap, words one side has and the other lacks, length difference) and
combines them with a logistic model: its output is a probability that the pair asks the same
thing, which calibration then turns into a threshold for a target false-hit rate.

The bundled weights (`scorer.json`) were fitted on STS-B's training pairs (score >= 4.0: same,
<= 2.0: different) with the bundled MiniLM embedder, after the default guards; `tether cache
fit-scorer` fits new ones from any graded pairs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tether.cache.semantic.guards import word_list
from tether.errors import ConfigError

FEATURES = ("cosine", "overlap", "most_unmatched", "least_unmatched", "length_gap", "cosine2")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    word_list(
        "a an the is are was were be been being of in on at to for with by and or but as it its "
        "this that these those there here from into over under than then so such some any each "
        "other"
    )
)
_SUFFIXES = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=65536)
def content_words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS)


def pair_features(query: str, cached: str, cosine: float) -> list[float]:
    a, b = content_words(query), content_words(cached)
    shared = len(a & b)
    union = len(a | b) or 1
    unmatched_a = len(a - b) / (len(a) or 1)
    unmatched_b = len(b - a) / (len(b) or 1)
    words_a, words_b = len(query.split()), len(cached.split())
    gap = abs(words_a - words_b) / (max(words_a, words_b) or 1)
    return [cosine, shared / union, max(unmatched_a, unmatched_b),
            min(unmatched_a, unmatched_b), gap, cosine * cosine]  # fmt: skip


@dataclass(frozen=True)
class Scorer:
    weights: tuple[float, ...]
    bias: float
    embedder: str  # the embedder whose cosines it was fitted on
    source: str = ""

    def score(self, query: str, cached: str, cosine: float) -> float:
        return self.of_features(pair_features(query, cached, cosine))

    def of_features(self, features: Sequence[float]) -> float:
        z = self.bias + sum(w * x for w, x in zip(self.weights, features, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_json(self) -> dict[str, Any]:
        return {"features": FEATURES, "weights": self.weights, "bias": self.bias,
                "embedder": self.embedder, "source": self.source}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scorer:
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"scorer features {data['features']} are not {list(FEATURES)}")
        return cls(tuple(float(w) for w in data["weights"]), float(data["bias"]),
                   str(data["embedder"]), str(data.get("source", "")))  # fmt: skip


def fit(
    features: Sequence[Sequence[float]], same: Sequence[bool], *, l2: float = 0.1
) -> tuple[tuple[float, ...], float]:
    """Logistic regression by Newton's method (six features: exact in a few steps)."""
    x = np.asarray(features, dtype=np.float64)
    x = np.hstack([x, np.ones((len(x), 1))])
    y = np.asarray(same, dtype=np.float64)
    w = np.zeros(x.shape[1])
    penalty = np.eye(x.shape[1]) * l2
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -50, 50)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step: NDArray[np.float64] = np.asarray(np.linalg.solve(hessian, gradient), np.float64)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return tuple(float(v) for v in w[:-1]), float(w[-1])


BUNDLED = "scorer.json"


def bundled() -> tuple[Scorer, dict[str, Any]]:
    """The bundled scorer and its calibration grades (its pairs' scores and verdicts)."""
    data = json.loads(resources.files(__package__).joinpath(BUNDLED).read_text("utf-8"))
    return Scorer.from_json(data["scorer"]), data["calibration"]


def load(path: Path) -> tuple[Scorer, dict[str, Any]]:
    """A scorer file written by `tether cache fit-scorer` (the bundled one's format)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        calibration = data["calibration"]
        if len(calibration["scores"]) != len(calibration["same"]):
            raise ValueError("calibration scores and verdicts differ in length")
        return Scorer.from_json(data["scorer"]), calibration
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot use the scorer file: {exc}",
            file=str(path),
            field="cache.semantic.scorer",
            fix="write it with `tether cache fit-scorer PAIRS.csv --out FILE`, or unset it",
        ) from None


def write(path: Path, scorer: Scorer, scores: Sequence[float], same: Sequence[bool]) -> None:
    payload = {"scorer": scorer.to_json(),
               "calibration": {"scores": [round(s, 6) for s in scores],
                               "same": [int(v) for v in same]}}  # fmt: skip
    path.write_text(json.dumps(payload, separators=(",", ":")) + "\n", encoding="utf-8")
