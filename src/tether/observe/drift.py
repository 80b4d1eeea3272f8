"""Drift between a baseline window and a recent window of one prompt version's signals.

Pure functions on numbers and labels (numpy only): PSI and a chi-square test for categorical
signals (`enum:*` labels), the two-sample Kolmogorov-Smirnov test for numeric ones, mean
deltas for rates such as `evasive` and `distinct_2`, and a permutation test on the mean of the
inputs' embeddings. `compare_signal` picks the tests that fit a signal; `DriftReport` holds the
results of one comparison; `drift_report` reads both windows from the store (signals, and the
inputs logged in the request log, embedded by the caller's embedder).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sqlalchemy import Engine

from tether.cache.embedders.base import Embedder
from tether.observe.alert_rules import DriftThresholds
from tether.store.requests_inputs import LoggedInput, logged_inputs, nth_latest_at
from tether.store.signals import signal_names, signal_series

# How each statistic is compared with its threshold: p-values drift when small, the rest when
# large.
Statistic = Literal[
    "psi", "chi2_p", "ks", "ks_p", "mean_delta", "embedding_distance", "embedding_p"
]
SMALL_IS_DRIFT: frozenset[str] = frozenset({"chi2_p", "ks_p", "embedding_p"})
# Signals compared by the change of their mean rather than by their distribution's shape.
MEAN_SIGNALS: frozenset[str] = frozenset({"evasive", "distinct_2", "type_token_ratio"})


# -- statistics --------------------------------------------------------------------------------


def psi(baseline: Mapping[str, int], recent: Mapping[str, int], *, floor: float = 1e-4) -> float:
    """Population stability index over the union of categories. An empty bin counts as
    `floor` of its window, so a category seen in only one window gives a large finite value."""
    categories = sorted(set(baseline) | set(recent))
    b_total, r_total = sum(baseline.values()), sum(recent.values())
    if not categories or b_total == 0 or r_total == 0:
        return 0.0
    b = np.array([baseline.get(c, 0) for c in categories], dtype=float) / b_total
    r = np.array([recent.get(c, 0) for c in categories], dtype=float) / r_total
    b, r = np.maximum(b, floor), np.maximum(r, floor)
    return float(np.sum((r - b) * np.log(r / b)))


def chi2_homogeneity(baseline: Mapping[str, int], recent: Mapping[str, int]) -> tuple[float, float]:
    """Pearson's chi-square test that two windows share one category distribution (a 2 x k
    contingency table): (statistic, p-value). Categories seen in neither window are dropped;
    with one category left there is nothing to test (0.0, 1.0)."""
    categories = [c for c in sorted(set(baseline) | set(recent)) if baseline.get(c, 0)
                  + recent.get(c, 0) > 0]  # fmt: skip
    if len(categories) < 2:
        return 0.0, 1.0
    observed = np.array(
        [[baseline.get(c, 0) for c in categories], [recent.get(c, 0) for c in categories]],
        dtype=float,
    )
    rows, columns, total = observed.sum(axis=1), observed.sum(axis=0), observed.sum()
    if total == 0 or np.any(rows == 0):
        return 0.0, 1.0
    expected = np.outer(rows, columns) / total
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = len(categories) - 1
    return statistic, chi2_sf(statistic, dof)


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for X ~ chi-square(dof): the regularized upper incomplete gamma Q(dof/2, x/2)."""
    if x <= 0:
        return 1.0
    return gamma_q(dof / 2.0, x / 2.0)


def gamma_q(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x): a series below a + 1, a continued fraction
    (modified Lentz) above, as in Numerical Recipes (section 6.2)."""
    if a <= 0:
        raise ValueError(f"gamma_q needs a > 0, got {a}")
    if x <= 0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        for _ in range(1000):
            denominator += 1.0
            term *= x / denominator
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_prefix) * h)


def ks_2samp(baseline: ArrayLike, recent: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: (D, asymptotic p-value). D is the largest gap
    between the two empirical CDFs; p uses Stephens' small-sample correction of the
    Kolmogorov distribution's tail."""
    a = np.sort(np.asarray(baseline, dtype=float))
    b = np.sort(np.asarray(recent, dtype=float))
    n, m = a.size, b.size
    if n == 0 or m == 0:
        return 0.0, 1.0
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / n
    cdf_b = np.searchsorted(b, points, side="right") / m
    statistic = float(np.max(np.abs(cdf_a - cdf_b)))
    effective = math.sqrt(n * m / (n + m))
    return statistic, kolmogorov_sf((effective + 0.12 + 0.11 / effective) * statistic)


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution: 2 * sum (-1)^(j-1) exp(-2 j^2 lam^2)."""
    if lam < 0.2:
        return 1.0  # the series converges slowly here and the tail is 1 to 1e-9
    total = 0.0
    for j in range(1, 101):
        term = (-1) ** (j - 1) * math.exp(-2.0 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, 2.0 * total))


_SPLITS_PER_BATCH = 256  # permutations per matrix product: 256 x (rows) floats at a time


def embedding_drift(
    baseline: ArrayLike, recent: ArrayLike, *, permutations: int = 500, seed: int = 0
) -> tuple[float, float]:
    """Distance between the mean embeddings of two sets of inputs (rows are vectors) and a
    permutation p-value: the share of random splits of the pooled rows (same sizes) whose
    means are at least as far apart, counting the observed split (so p >= 1/(permutations+1))."""
    a = np.atleast_2d(np.asarray(baseline, dtype=float))
    b = np.atleast_2d(np.asarray(recent, dtype=float))
    if a.shape[0] == 0 or b.shape[0] == 0:
        return 0.0, 1.0
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"embeddings differ in width: baseline {a.shape[1]}, recent {b.shape[1]}")
    observed = float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)))
    pooled = np.vstack([a, b])
    n, total = a.shape[0], pooled.shape[0]
    pooled_sum = pooled.sum(axis=0)
    rng = np.random.default_rng(seed)
    first = np.zeros(total)
    first[:n] = 1.0
    at_least = 0
    # A batch of splits as 0/1 rows: one matrix product sums every split's first group.
    for done in range(0, permutations, _SPLITS_PER_BATCH):
        size = min(_SPLITS_PER_BATCH, permutations - done)
        sums = rng.permuted(np.tile(first, (size, 1)), axis=1) @ pooled
        gaps = sums / n - (pooled_sum - sums) / (total - n)
        at_least += int(np.count_nonzero(np.linalg.norm(gaps, axis=1) >= observed - 1e-12))
    return observed, (at_least + 1) / (permutations + 1)


# -- one signal, one comparison ----------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """A window of one signal: numbers for numeric signals, labels for categorical ones."""

    values: list[float] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return max(len(self.values), len(self.labels))

    @classmethod
    def of(cls, points: Iterable[Any]) -> Sample:
        """From stored points (anything with `value` and `label`)."""
        values: list[float] = []
        labels: list[str] = []
        for point in points:
            if point.label is not None:
                labels.append(str(point.label))
            elif point.value is not None and math.isfinite(point.value):
                values.append(float(point.value))
        return cls(values, labels)


@dataclass(frozen=True)
class DriftResult:
    signal: str
    statistic: str
    value: float | None  # None: too few samples to test
    threshold: float
    drifted: bool
    baseline_n: int
    recent_n: int
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def is_categorical(signal: str) -> bool:
    return signal.startswith("enum:")


def exceeds(statistic: str, value: float, threshold: float) -> bool:
    """Whether `value` of `statistic` is past its threshold (p-values: below it)."""
    return value < threshold if statistic in SMALL_IS_DRIFT else value >= threshold


def compare_signal(
    signal: str, baseline: Sample, recent: Sample, thresholds: DriftThresholds
) -> list[DriftResult]:
    """The tests that fit `signal`: PSI and chi-square for labels, the mean's change for
    rates, KS for other numbers. Below the minimum sample in either window the results say so
    and never drift."""
    n_b, n_r = baseline.size, recent.size
    few = min(n_b, n_r) < thresholds.min_sample
    note = few_note(thresholds) if few else ""

    def result(statistic: str, value: float, threshold: float) -> DriftResult:
        if few:
            return DriftResult(signal, statistic, None, threshold, False, n_b, n_r, note)
        drifted = exceeds(statistic, value, threshold)
        return DriftResult(signal, statistic, value, threshold, drifted, n_b, n_r)

    if is_categorical(signal) or (baseline.labels or recent.labels):
        b, r = Counter(baseline.labels), Counter(recent.labels)
        _, p = chi2_homogeneity(b, r)
        return [
            result("psi", psi(b, r, floor=thresholds.psi_floor), thresholds.psi),
            result("chi2_p", p, thresholds.p_value),
        ]
    if signal in MEAN_SIGNALS:
        delta = _mean(recent.values) - _mean(baseline.values)
        limit = thresholds.mean_delta.get(signal, thresholds.default_mean_delta)
        if few:
            return [DriftResult(signal, "mean_delta", None, limit, False, n_b, n_r, note)]
        return [DriftResult(signal, "mean_delta", delta, limit, abs(delta) >= limit, n_b, n_r)]
    statistic, p = ks_2samp(baseline.values, recent.values)
    return [result("ks", statistic, thresholds.ks), result("ks_p", p, thresholds.p_value)]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


@dataclass(frozen=True)
class DriftReport:
    prompt: str
    version: str | None
    baseline: tuple[datetime | None, datetime | None]  # first and last point's time
    recent: tuple[datetime | None, datetime | None]
    results: list[DriftResult]
    # each signal's two windows, for plots (not part of the JSON)
    samples: dict[str, tuple[Sample, Sample]] = field(default_factory=dict, repr=False)

    @property
    def drifted(self) -> list[DriftResult]:
        return [r for r in self.results if r.drifted]

    def to_json(self) -> dict[str, Any]:
        def span(pair: tuple[datetime | None, datetime | None]) -> list[str | None]:
            return [t.isoformat() if t else None for t in pair]

        return {
            "prompt": self.prompt,
            "version": self.version,
            "baseline": span(self.baseline),
            "recent": span(self.recent),
            "results": [r.to_json() for r in self.results],
        }


INPUT_SIGNAL = "input_embedding"


def embedding_result(
    baseline: NDArray[np.float64] | Sequence[Sequence[float]],
    recent: NDArray[np.float64] | Sequence[Sequence[float]],
    thresholds: DriftThresholds,
    *,
    seed: int = 0,
) -> DriftResult:
    """The inputs' embedding drift as one result (the permutation p-value)."""
    n_b, n_r = len(baseline), len(recent)
    if min(n_b, n_r) < thresholds.min_sample:
        return untested_inputs(n_b, n_r, thresholds, few_note(thresholds))
    permutations = permutations_for(thresholds)
    distance, p = embedding_drift(baseline, recent, permutations=permutations, seed=seed)
    note = f"mean distance {distance:.4f}"
    drifted = p < thresholds.p_value
    return DriftResult(INPUT_SIGNAL, "embedding_p", p, thresholds.p_value, drifted, n_b, n_r,
                       note)  # fmt: skip


def permutations_for(thresholds: DriftThresholds) -> int:
    """Enough permutations for a p-value below the threshold to be possible: p is at least
    1/(permutations+1), so 500 could never pass the default 0.001."""
    return max(thresholds.permutations, math.ceil(5 / thresholds.p_value))


def untested_inputs(n_b: int, n_r: int, thresholds: DriftThresholds, note: str) -> DriftResult:
    """The inputs' result when no test ran: never drift, `note` says why."""
    return DriftResult(INPUT_SIGNAL, "embedding_p", None, thresholds.p_value, False, n_b, n_r,
                       note)  # fmt: skip


def few_note(thresholds: DriftThresholds) -> str:
    return f"fewer than {thresholds.min_sample} samples in a window"


def input_drift(
    baseline: Sequence[str],
    recent: Sequence[str],
    embedder: Embedder | None,
    thresholds: DriftThresholds,
) -> DriftResult:
    """Embed both windows' input texts and test their means. Nothing is embedded when either
    window is below the minimum sample (the model need not even load)."""
    n_b, n_r = len(baseline), len(recent)
    if embedder is None:
        return untested_inputs(n_b, n_r, thresholds, 'no embedder (evasive_embedder = "none")')
    if min(n_b, n_r) < thresholds.min_sample:
        return untested_inputs(n_b, n_r, thresholds, few_note(thresholds))
    vectors = np.asarray(embedder.embed([*baseline, *recent]), dtype=np.float64)
    return embedding_result(vectors[:n_b], vectors[n_b:], thresholds)


def numeric_bins(
    baseline: Sequence[float], recent: Sequence[float], *, bins: int = 10
) -> tuple[dict[str, int], dict[str, int]]:
    """Counts of both windows in the baseline's quantile bins, so PSI and chi-square can
    compare numbers too."""
    if not baseline:
        return {}, {}
    edges = np.unique(np.quantile(np.asarray(baseline, dtype=float), np.linspace(0, 1, bins + 1)))
    inner = edges[1:-1]  # values beyond the baseline's range fall in the outer bins

    def counts(values: Sequence[float]) -> dict[str, int]:
        found = np.searchsorted(inner, np.asarray(values, dtype=float), side="right")
        bins, sizes = np.unique(found, return_counts=True)
        return {f"bin{int(k)}": int(v) for k, v in zip(bins, sizes, strict=True)}

    return counts(baseline), counts(recent)


# -- windows read from the store ----------------------------------------------------------------


MAX_POINTS = 50_000  # per signal and window
# Inputs embedded per window, the newest: a permutation test on 500 a side detects a shift
# well, and embedding every logged input of a busy week would take minutes.
MAX_INPUTS = 500

WindowSize = int | timedelta  # a time span, or a number of requests


def drift_report(
    engine: Engine,
    prompt: str,
    version: str | None,
    *,
    now: datetime,
    recent: WindowSize,
    baseline: WindowSize,
    thresholds: DriftThresholds,
    embedder: Embedder | None = None,
) -> DriftReport:
    """Every stored signal of one prompt version, and its logged inputs, the recent window
    against the baseline window just before it. A window is a time span ending at `now`
    (timedelta) or the latest N values (int) of each signal, or N requests' inputs.
    Blocking (database, embedding): run it off the event loop."""
    results: list[DriftResult] = []
    samples: dict[str, tuple[Sample, Sample]] = {}
    recent_times: list[datetime] = []
    baseline_times: list[datetime] = []
    for name in signal_names(engine, prompt, version):
        if isinstance(recent, timedelta):
            start = now - recent
            new = signal_series(engine, prompt=prompt, version=version, name=name, since=start,
                                until=now, limit=MAX_POINTS)  # fmt: skip
        else:
            new = signal_series(engine, prompt=prompt, version=version, name=name, until=now,
                                limit=recent)  # fmt: skip
            start = new[0].at if new else now
        if isinstance(baseline, timedelta):
            old = signal_series(engine, prompt=prompt, version=version, name=name,
                                since=start - baseline, until=start, limit=MAX_POINTS)  # fmt: skip
        else:
            old = signal_series(engine, prompt=prompt, version=version, name=name, until=start,
                                limit=baseline)  # fmt: skip
        pair = Sample.of(old), Sample.of(new)
        samples[name] = pair
        results.extend(compare_signal(name, *pair, thresholds))
        recent_times += [p.at for p in new]
        baseline_times += [p.at for p in old]
    old_inputs, new_inputs = input_windows(engine, prompt, version, now=now, recent=recent,
                                           baseline=baseline)  # fmt: skip
    if old_inputs or new_inputs:  # none logged (the request log off): nothing to say
        results.append(input_drift([i.text for i in old_inputs], [i.text for i in new_inputs],
                                   embedder, thresholds))  # fmt: skip
    recent_times += [i.at for i in new_inputs]
    baseline_times += [i.at for i in old_inputs]
    return DriftReport(prompt, version, _span(baseline_times), _span(recent_times), results,
                       samples)  # fmt: skip


def input_windows(
    engine: Engine,
    prompt: str,
    version: str | None,
    *,
    now: datetime,
    recent: WindowSize,
    baseline: WindowSize,
) -> tuple[list[LoggedInput], list[LoggedInput]]:
    """The logged inputs of the baseline and recent windows (the newest MAX_INPUTS of each),
    by the signals' window rules: a request window starts at its N-th newest request."""
    if isinstance(recent, timedelta):
        start: datetime | None = now - recent
    else:
        start = nth_latest_at(engine, prompt=prompt, version=version, until=now, n=recent)
    new = logged_inputs(engine, prompt=prompt, version=version, since=start, until=now,
                        limit=_cap(recent))  # fmt: skip
    if start is None:  # fewer requests than the recent window: all of them are recent
        return [], new
    since = start - baseline if isinstance(baseline, timedelta) else None
    old = logged_inputs(engine, prompt=prompt, version=version, since=since, until=start,
                        limit=_cap(baseline))  # fmt: skip
    return old, new


def _cap(window: WindowSize) -> int:
    return MAX_INPUTS if isinstance(window, timedelta) else min(window, MAX_INPUTS)


def _span(times: list[datetime]) -> tuple[datetime | None, datetime | None]:
    return (min(times), max(times)) if times else (None, None)
