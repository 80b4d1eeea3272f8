"""RouteLLM's per-question outcomes as tether routing datasets, and the TF-IDF baseline router.

Data (see ../shared/data/README.md): `routing/gsm8k/gsm8k_responses.csv` and
`routing/mmlu/mmlu_*.csv`, each row a prompt and whether Mixtral-8x7B-Instruct (the weak,
cheap model) and GPT-4-1106 (the strong, premium one) answered it correctly.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tether.routing.learned.dataset import Outcome, Outcomes

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
_TERM = re.compile(r"[a-z0-9]+")


def read_routellm(files: Sequence[Path]) -> Outcomes:
    csv.field_size_limit(sys.maxsize)  # GSM8K rows carry both models' full responses
    rows: list[Outcome] = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            for record in csv.DictReader(handle):
                rows.append(
                    Outcome(record["prompt"], record[WEAK] == "True", record[STRONG] == "True")
                )
    return Outcomes(tuple(rows))


def benchmark_files(data: Path, name: str) -> list[Path]:
    folder = data / "routing" / name
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise SystemExit(f"missing data: no CSV under {folder} (pass --data)")
    return files


def folds_of(n: int, folds: int, seed: int) -> list[NDArray[np.int64]]:
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(order, folds)]


class TfidfLogistic:
    """The baseline: TF-IDF over the 2,000 most frequent words and word pairs of the training
    texts, then logistic regression on "the cheap model passes", fitted by full-batch Adam
    (dense NumPy, no scikit-learn). Its score for premium is 1 - p(cheap passes)."""

    def __init__(self, vocabulary: int = 2000, l2: float = 1e-3, steps: int = 300) -> None:
        self.size = vocabulary
        self.l2 = l2
        self.steps = steps
        self.terms: dict[str, int] = {}
        self.idf = np.zeros(0, dtype=np.float32)
        self.w = np.zeros(0, dtype=np.float32)
        self.b = 0.0

    @staticmethod
    def _tokens(text: str) -> list[str]:
        words = _TERM.findall(text.lower())
        return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]

    def _matrix(self, texts: Sequence[str]) -> NDArray[np.float32]:
        x = np.zeros((len(texts), len(self.terms)), dtype=np.float32)
        for row, text in enumerate(texts):
            for token, count in Counter(self._tokens(text)).items():
                column = self.terms.get(token)
                if column is not None:
                    x[row, column] = 1.0 + math.log(count)
        x *= self.idf
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return np.asarray(x / np.maximum(norms, 1e-9), dtype=np.float32)

    def fit(self, texts: Sequence[str], cheap_correct: NDArray[np.bool_]) -> TfidfLogistic:
        df: Counter[str] = Counter()
        for text in texts:
            df.update(set(self._tokens(text)))
        common = [term for term, _ in df.most_common(self.size)]
        self.terms = {term: i for i, term in enumerate(common)}
        n = len(texts)
        self.idf = np.array([math.log((1 + n) / (1 + df[t])) + 1 for t in common], np.float32)
        x = self._matrix(texts)
        y = cheap_correct.astype(np.float32)
        w = np.zeros(x.shape[1], dtype=np.float32)
        b = float(np.log(y.mean() / (1 - y.mean())))
        m, v, mb, vb = np.zeros_like(w), np.zeros_like(w), 0.0, 0.0
        rate, beta1, beta2 = 0.05, 0.9, 0.999
        for step in range(1, self.steps + 1):
            p = 1 / (1 + np.exp(-(x @ w + b)))
            grad = x.T @ (p - y) / n + self.l2 * w
            grad_b = float((p - y).mean())
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            mb = beta1 * mb + (1 - beta1) * grad_b
            vb = beta2 * vb + (1 - beta2) * grad_b**2
            correction1, correction2 = 1 - beta1**step, 1 - beta2**step
            w -= rate * (m / correction1) / (np.sqrt(v / correction2) + 1e-8)
            b -= rate * (mb / correction1) / (math.sqrt(vb / correction2) + 1e-8)
        self.w, self.b = w, b
        return self

    def premium_scores(self, texts: Sequence[str]) -> NDArray[np.float64]:
        p = 1 / (1 + np.exp(-(self._matrix(texts) @ self.w + self.b)))
        return np.asarray(1 - p, dtype=np.float64)
