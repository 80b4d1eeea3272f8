"""Fitting a scorer and its calibration from graded pairs (a CSV of text, text, grade).

The pairs fit the scorer's six weights, then grade it for calibration. A pair's calibration
score comes from a scorer fitted without it (ten folds): scores of the very pairs a model was
fitted on flatter it, and thresholds set on them let slightly more false hits through on new
pairs than δ allows. Pairs a guard vetoes are left out (they are never served, whatever their
score).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tether.cache.embedders.base import Embedder
from tether.cache.semantic.guards import DEFAULT_GUARDS, veto
from tether.cache.semantic.scorer import Scorer, fit, pair_features
from tether.errors import ConfigError


@dataclass(frozen=True)
class GradedPair:
    cached: str
    query: str
    same: bool


def read_pairs(path: Path, *, same_at: float = 4.0, different_at: float = 2.0) -> list[GradedPair]:
    """Rows `text, text, grade`: a grade >= same_at is the same question, <= different_at a
    different one; grades between are ambiguous and left out. A grade may also be true/false."""
    pairs: list[GradedPair] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.reader(handle), start=1):
            if len(row) < 3:
                raise ConfigError(f"{path}:{line}: expected `text,text,grade`, got {len(row)} "
                                  "columns", file=str(path), field=f"line {line}",
                                  fix="write three columns per row")  # fmt: skip
            grade = row[2].strip().lower()
            if grade in ("true", "false"):
                pairs.append(GradedPair(row[0], row[1], grade == "true"))
                continue
            try:
                value = float(grade)
            except ValueError:
                raise ConfigError(f"{path}:{line}: grade {row[2]!r} is not a number or "
                                  "true/false", file=str(path), field=f"line {line}",
                                  fix="grade each pair 0-5 or true/false") from None  # fmt: skip
            if value >= same_at or value <= different_at:
                pairs.append(GradedPair(row[0], row[1], value >= same_at))
    return pairs


def cosines(embedder: Embedder, pairs: Sequence[GradedPair]) -> list[float]:
    cached = embedder.embed([p.cached for p in pairs])
    query = embedder.embed([p.query for p in pairs])
    return [float(v) for v in np.einsum("ij,ij->i", cached, query)]


def unvetoed(
    pairs: Sequence[GradedPair], guards: Sequence[str] = DEFAULT_GUARDS
) -> list[GradedPair]:
    return [p for p in pairs if veto(p.query, p.cached, guards) is None]


@dataclass(frozen=True)
class Fitted:
    scorer: Scorer
    scores: list[float]  # the pairs' scores ...
    same: list[bool]  # ... and verdicts: the calibration grades


def fit_scorer(
    embedder: Embedder, pairs: Sequence[GradedPair], *, source: str,
    guards: Sequence[str] = DEFAULT_GUARDS,
) -> Fitted:  # fmt: skip
    kept = unvetoed(pairs, guards)
    if len(kept) < 40 or len({p.same for p in kept}) < 2:
        raise ConfigError(f"{len(kept)} usable graded pairs; a scorer needs at least 40, "
                          "some same and some different", file=None, field="pairs",
                          fix="grade more pairs")  # fmt: skip
    sims = cosines(embedder, kept)
    rows = [pair_features(p.query, p.cached, c) for p, c in zip(kept, sims, strict=True)]
    same = [p.same for p in kept]
    weights, bias = fit(rows, same)
    scorer = Scorer(weights, bias, embedder.name, source)
    return Fitted(scorer, held_out_scores(rows, same, scorer), same)


FOLDS = 10


def held_out_scores(
    rows: Sequence[Sequence[float]], same: Sequence[bool], scorer: Scorer, folds: int = FOLDS
) -> list[float]:
    """Each pair's score by a scorer fitted on the other folds (pairs dealt to folds in turn).
    A fold whose rest holds one verdict only cannot fit: its pairs keep `scorer`'s scores."""
    scores = [scorer.of_features(row) for row in rows]
    for fold in range(folds):
        rest = [i for i in range(len(rows)) if i % folds != fold]
        if len({same[i] for i in rest}) < 2:
            continue
        weights, bias = fit([rows[i] for i in rest], [same[i] for i in rest])
        held = Scorer(weights, bias, scorer.embedder, scorer.source)
        for i in range(fold, len(rows), folds):
            scores[i] = held.of_features(rows[i])
    return scores
