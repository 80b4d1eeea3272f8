"""`tether cache calibrate` and `tether cache fit-scorer`: graded pairs into calibration grades,
or into a new pair scorer."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tether.cache.embedders.base import Embedder, Vectors
from tether.cache.grades import Grade
from tether.cache.semantic.calibration import Calibration, calibrate
from tether.cache.semantic.fitting import GradedPair, fit_scorer, read_pairs, unvetoed
from tether.cache.semantic.scorer import bundled, write
from tether.cache.thresholds import BUNDLED_SOURCE
from tether.cli.cache_report import (
    PromptCalibration,
    calibration_table,
    calibrations_of,
    configured_delta,
    label,
    table,
    threshold,
)
from tether.cli.common import progress_bar, stdout
from tether.errors import ConfigError
from tether.runtime import Runtime
from tether.settings import Settings
from tether.store.cache_grades import DatabaseGradeStore

STANDARD_DELTAS = (0.01, 0.02, 0.05)
BATCH = 64  # pairs embedded per step of the progress bar


def _read(path: Path, option: str, grades: tuple[float, float]) -> list[GradedPair]:
    same_at, different_at = grades
    if different_at >= same_at:
        raise ConfigError(
            f"--different-at ({different_at:g}) must be below --same-at ({same_at:g})",
            file=None,
            field="--different-at",
            fix="grades between the two are left out as ambiguous",
        )
    try:
        return read_pairs(path, same_at=same_at, different_at=different_at)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the graded pairs: {exc.strerror or exc}",
            file=str(path),
            field=None,
            fix=f"give an existing CSV file as {option}",
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            "the graded pairs are not UTF-8 text",
            file=str(path),
            field=None,
            fix="save the CSV as UTF-8",
        ) from None


def _usable(
    path: Path, pairs: list[GradedPair], guards: Sequence[str]
) -> tuple[list[GradedPair], int]:
    kept = unvetoed(pairs, guards)
    if not kept:
        raise ConfigError(
            f"no usable graded pairs in {path} ({len(pairs)} read, all vetoed "
            "by a guard or graded between --different-at and --same-at)",
            file=str(path),
            field=None,
            fix="add pairs graded clearly the same or clearly different",
        )
    return kept, len(pairs) - len(kept)


def _add_pairs(
    runtime: Runtime, prompt: str | None, path: Path, grades: tuple[float, float]
) -> None:
    """Score the pairs as the live cache would (its embedder and scorer, after its guards) and
    store them as the prompt's grades."""
    cache = runtime.cache
    pairs = _read(path, "--pairs", grades)
    kept, vetoed = _usable(path, pairs, cache.settings.semantic.guards)
    embedder = cache.embedder
    similarities: list[float] = []
    with progress_bar() as bar:
        task = bar.add_task("embedding pairs", total=len(kept))
        for start in range(0, len(kept), BATCH):
            batch = kept[start : start + BATCH]
            texts = [p.cached for p in batch] + [p.query for p in batch]
            vectors = runtime.call_sync(embedder.embed, texts)
            n = len(batch)
            similarities.extend(float(v) for v in np.einsum("ij,ij->i", vectors[:n], vectors[n:]))
            bar.advance(task, n)
    scorer = cache.scorer
    now = time.time()
    rows = [
        Grade(
            prompt=prompt,
            score=scorer.score(p.query, p.cached, similarity),
            similarity=similarity,
            right=p.same,
            source="pairs",
            request_id=None,
            created_at=now,
        )
        for p, similarity in zip(kept, similarities, strict=True)
    ]
    DatabaseGradeStore(runtime.engine).add(rows)
    same = sum(p.same for p in kept)
    stdout.print(
        f"stored {len(rows):,} graded pairs for {label(prompt)} ({same:,} same, "
        f"{len(rows) - same:,} different; {vetoed:,} vetoed by a guard, "
        "left out)"
    )


def calibrate_prompt(
    runtime: Runtime,
    prompt: str | None,
    pairs: Path | None,
    deltas: Sequence[float],
    grades: tuple[float, float],
) -> None:
    if pairs is not None:
        _add_pairs(runtime, prompt, pairs, grades)
    chosen = sorted(set(deltas) or {*STANDARD_DELTAS, configured_delta(runtime, prompt)})
    rows = calibrations_of(runtime, [(prompt, chosen)])
    fallback = _bundled(runtime, chosen)
    stdout.print(calibration_table(rows, f"calibration of {label(prompt)}", fallback, one=True))
    _explain(runtime, rows, fallback)


def _bundled(runtime: Runtime, deltas: Sequence[float]) -> dict[float, Calibration] | None:
    """The bundled calibration per δ, when the configured embedder is the one it holds for."""
    scorer, grades = bundled()
    if runtime.cache.embedder.name != scorer.embedder:
        return None
    scores, same = [float(s) for s in grades["scores"]], [bool(v) for v in grades["same"]]
    return {delta: calibrate(scores, same, delta, BUNDLED_SOURCE) for delta in deltas}


def _explain(
    runtime: Runtime, rows: Sequence[PromptCalibration], fallback: dict[float, Calibration] | None
) -> None:
    if not rows:
        return
    needed = runtime.settings.cache.semantic.min_grades
    own = rows[0].grades
    name = label(rows[0].prompt)
    if own < needed:
        instead = (
            "the bundled one applies"
            if fallback is not None
            else "nothing is served semantically (the embedder has no bundled grades)"
        )
        stdout.print(
            f"{name} has {own:,} graded samples; its own calibration takes over at "
            f"{needed:,} (cache.semantic.min_grades): until then {instead}"
        )
    stdout.print("a running gateway reads new grades within a minute")


# -- fit-scorer ---------------------------------------------------------------------------------


class _Reporting:
    """An embedder that embeds in batches and reports each to a progress bar."""

    def __init__(self, inner: Embedder, advance: Callable[[int], None]) -> None:
        self._inner = inner
        self._advance = advance

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimensions(self) -> int:
        return self._inner.dimensions

    def embed(self, texts: Sequence[str]) -> Vectors:
        items = list(texts)
        parts: list[Vectors] = []
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            parts.append(self._inner.embed(batch))
            self._advance(len(batch))
        if not parts:
            return self._inner.embed([])
        joined: Vectors = np.concatenate(parts).astype(np.float32)
        return joined


def fit_and_write(path: Path, out: Path, grades: tuple[float, float], config: Path | None) -> None:
    from tether.cache.embedders.minilm import MiniLMEmbedder

    guards = Settings.load(config).cache.semantic.guards
    pairs = _read(path, "PAIRS", grades)
    kept, vetoed = _usable(path, pairs, guards)
    embedder = MiniLMEmbedder()
    with progress_bar() as bar:
        task = bar.add_task("embedding pairs", total=2 * len(kept))
        reporting = _Reporting(embedder, lambda n: bar.advance(task, n))
        source = f"{path.name}: >= {grades[0]:g} same, <= {grades[1]:g} different"
        fitted = fit_scorer(reporting, pairs, source=source, guards=guards)
    try:
        write(out, fitted.scorer, fitted.scores, fitted.same)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {out}: {exc.strerror or exc}",
            file=str(out),
            field="--out",
            fix="choose a path in an existing folder",
        ) from None
    same = sum(fitted.same)
    stdout.print(
        f"fitted on {len(fitted.same):,} pairs ({same:,} same, "
        f"{len(fitted.same) - same:,} different; {vetoed:,} vetoed by a guard, left "
        f"out); wrote {label(str(out))}"
    )
    found = table("thresholds from its grades", ("δ", "threshold", "hits", "bound"))
    for delta in STANDARD_DELTAS:
        c = calibrate(fitted.scores, fitted.same, delta, source)
        found.add_row(
            f"{delta:g}", threshold(c.threshold), f"{c.hits:,} of {c.samples:,}", f"{c.bound:.4f}"
        )
    stdout.print(found)
