"""Calibration of a prompt's confidence field: does a stated confidence of 0.8 mean right 80 % of
the time? Confidences are put in equal-width bins; the expected calibration error (ECE) is the
bin-weighted mean of |accuracy - mean confidence|, 0 for a perfectly calibrated model.

The (confidence, correct) pairs of a prompt come from where the truth is known: user feedback
on logged requests (a score of 0.5 or more is right) and canary runs (the `canary` signal a
request's test assertions left, 1 passed or 0 failed). A request's confidence is its stored
`confidence` signal, or else read from its logged output by the rule the signals use.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from tether.observe.alert_rules import CALIBRATION_RULE, AlertSettings
from tether.observe.alert_sinks import AlertSink, build_sinks
from tether.observe.alerts import Alerter, Cooldowns, Key, every
from tether.observe.signals import CONFIDENCE_FIELD, SchemaFields, value_at
from tether.store.alerts import AlertRow
from tether.store.dialect import utc_bound
from tether.store.signals import prompt_versions, signal_values
from tether.store.tables import feedback, requests

logger = logging.getLogger("tether.alerts")

CANARY_SIGNAL = "canary"  # a canary run's verdict on its request: 1 passed, 0 failed
CONFIDENCE_SIGNAL = "confidence"
CORRECT_SCORE = 0.5  # feedback scores at or above it count as a right answer
_CHUNK = 500  # request ids per IN (...) query

ConfidencePath = tuple[str, ...]


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin [lower, upper) (the last one includes 1.0)."""

    lower: float
    upper: float
    count: int
    confidence: float | None  # mean stated confidence; None for an empty bin
    accuracy: float | None  # share right

    @property
    def gap(self) -> float | None:
        if self.confidence is None or self.accuracy is None:
            return None
        return self.accuracy - self.confidence


@dataclass(frozen=True)
class Reliability:
    bins: tuple[ReliabilityBin, ...]

    @property
    def total(self) -> int:
        return sum(b.count for b in self.bins)

    @property
    def ece(self) -> float:
        """Expected calibration error: sum over bins of count/total * |accuracy - confidence|."""
        total = self.total
        if total == 0:
            return 0.0
        return sum(b.count / total * abs(b.gap) for b in self.bins if b.gap is not None)

    @property
    def accuracy(self) -> float | None:
        total = self.total
        if total == 0:
            return None
        return sum(b.count * (b.accuracy or 0.0) for b in self.bins) / total

    @property
    def mean_confidence(self) -> float | None:
        total = self.total
        if total == 0:
            return None
        return sum(b.count * (b.confidence or 0.0) for b in self.bins) / total


def reliability(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> Reliability:
    """Per-bin count, mean confidence and accuracy over `bins` equal-width bins of [0, 1]."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    if len(confidences) != len(correct):
        raise ValueError(
            f"{len(confidences)} confidences but {len(correct)} verdicts: give one verdict each"
        )
    conf = np.asarray(confidences, dtype=float)
    right = np.asarray(correct, dtype=bool)
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0 or conf.max() > 1):
        raise ValueError("confidences must lie in [0, 1]; rescale percentages by 1/100")
    index = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for i in range(bins):
        mask = index == i
        count = int(mask.sum())
        out.append(
            ReliabilityBin(
                lower=i / bins,
                upper=(i + 1) / bins,
                count=count,
                confidence=float(conf[mask].mean()) if count else None,
                accuracy=float(right[mask].mean()) if count else None,
            )
        )
    return Reliability(tuple(out))


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float:
    return reliability(confidences, correct, bins).ece


def reliability_plot(result: Reliability, path: Path, *, title: str = "") -> Path:
    """A reliability diagram as PNG: accuracy per bin against the diagonal of perfect
    calibration, each bin's mean confidence as a point, the ECE in the title."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 5.5), dpi=100)
    axes = figure.add_subplot()
    width = result.bins[0].upper - result.bins[0].lower if result.bins else 0.1
    filled = [b for b in result.bins if b.count]
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    axes.bar([b.lower for b in filled], [b.accuracy or 0.0 for b in filled], width=width,
             align="edge", alpha=0.6, edgecolor="black", label="accuracy")  # fmt: skip
    axes.scatter([b.confidence or 0.0 for b in filled], [b.accuracy or 0.0 for b in filled],
                 color="tab:red", zorder=3, label="mean confidence")  # fmt: skip
    for b in filled:
        axes.annotate(str(b.count), (b.lower + width / 2, (b.accuracy or 0.0) + 0.01),
                      ha="center", fontsize=7)  # fmt: skip
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel("stated confidence")
    axes.set_ylabel("accuracy")
    head = f"{title}: " if title else ""
    axes.set_title(f"{head}ECE {result.ece:.3f} (n = {result.total})")
    axes.legend(loc="upper left", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


# -- pairs from the store ----------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationSample:
    """(confidence, correct) pairs of one prompt (version), with where they came from."""

    prompt: str
    version: str | None  # None: every version
    confidences: list[float] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    from_feedback: int = 0
    from_canaries: int = 0
    skipped: int = 0  # a verdict without a usable confidence (none, or outside [0, 1])

    @property
    def size(self) -> int:
        return len(self.confidences)

    def reliability(self, bins: int = 10) -> Reliability:
        return reliability(self.confidences, self.correct, bins)


def calibration_of_prompt(
    engine: Engine, prompt: str, version: str | None, since: datetime | None
) -> CalibrationSample:
    """The pairs of `prompt` (one `version`, or every version when None) from requests at or
    after `since`. One pair per request: its latest feedback, else its canary verdict."""
    verdicts: dict[str, tuple[bool, str]] = {}  # request id -> (correct, source)
    for request_id, right in _canary_verdicts(engine, prompt, version, since):
        verdicts[request_id] = (right, "canary")
    for request_id, right in _feedback_verdicts(engine, prompt, version, since):
        verdicts[request_id] = (right, "feedback")  # a person's word over an assertion's
    confidences = _confidences(engine, prompt, list(verdicts))
    sample = CalibrationSample(prompt, version)
    counts = {"feedback": 0, "canary": 0}
    skipped = 0
    for request_id, (right, source) in verdicts.items():
        value = confidences.get(request_id)
        if value is None or not math.isfinite(value) or not 0 <= value <= 1:
            skipped += 1
            continue
        sample.confidences.append(value)
        sample.correct.append(right)
        counts[source] += 1
    return CalibrationSample(prompt, version, sample.confidences, sample.correct,
                             counts["feedback"], counts["canary"], skipped)  # fmt: skip


def _feedback_verdicts(
    engine: Engine, prompt: str, version: str | None, since: datetime | None
) -> Iterable[tuple[str, bool]]:
    f, r = feedback.c, requests.c
    query = (
        select(f.request_id, f.score)
        .join(requests, r.id == f.request_id)
        .where(r.prompt == prompt, f.score.is_not(None))
        .order_by(f.at, f.id)  # the latest feedback on a request is read last and wins
    )
    if version is not None:
        query = query.where(r.prompt_version == version)
    start = utc_bound(since)
    if start is not None:
        query = query.where(r.at >= start)
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    return [(row.request_id, float(row.score) >= CORRECT_SCORE) for row in rows]


def _canary_verdicts(
    engine: Engine, prompt: str, version: str | None, since: datetime | None
) -> Iterable[tuple[str, bool]]:
    found = signal_values(engine, CANARY_SIGNAL, prompt=prompt, version=version, since=since)
    return [(request_id, value >= 0.5) for request_id, value in found]


def _confidences(engine: Engine, prompt: str, ids: Sequence[str]) -> dict[str, float]:
    """Each request's confidence: its stored signal, else read from its logged output."""
    found: dict[str, float] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        found.update(signal_values(engine, CONFIDENCE_SIGNAL, request_ids=chunk))
    missing = [i for i in ids if i not in found]
    paths: dict[str | None, ConfidencePath | None] = {}
    r = requests.c
    for start in range(0, len(missing), _CHUNK):
        chunk = missing[start : start + _CHUNK]
        query = select(r.id, r.prompt_version, r.output).where(r.id.in_(chunk))
        with engine.connect() as conn:
            rows = list(conn.execute(query))
        for row in rows:
            if row.prompt_version not in paths:
                paths[row.prompt_version] = confidence_path(engine, prompt, row.prompt_version)
            value = _from_output(row.output, paths[row.prompt_version])
            if value is not None:
                found[row.id] = value
    return found


def _from_output(output: str | None, path: ConfidencePath | None) -> float | None:
    if output is None or path is None:
        return None
    try:
        data = json.loads(output)
    except ValueError:
        return None
    value = value_at(data, path)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def confidence_path(engine: Engine, prompt: str, version: str | None) -> ConfidencePath | None:
    """Where the prompt version's output keeps its confidence, by the signals' rule (a field
    marked x-tether-confidence, else a top-level numeric `confidence`). Without a readable
    schema in the registry: a top-level `confidence`."""
    schema = _output_schema(engine, prompt, version)
    if schema is None:
        return (CONFIDENCE_FIELD,)
    return SchemaFields.of(schema).confidence


def _output_schema(engine: Engine, prompt: str, version: str | None) -> Mapping[str, Any] | None:
    from tether.errors import TetherError
    from tether.prompts.registry import Registry

    if version is None:
        return None
    registry = Registry(engine)
    try:
        found = registry.get(prompt, version=version)
    except TetherError:
        return None  # a spec file run without the registry
    output = found.spec.output
    if output is None:
        return None
    if output.schema_ is not None:
        return output.schema_
    try:  # a Pydantic model named in the spec: its module must be importable here
        contract = registry.compiled(found).contract
    except Exception:
        return None
    return contract.schema if contract is not None else None


# -- the calibration rule ----------------------------------------------------------------------


def check_calibration(
    engine: Engine,
    settings: AlertSettings,
    now: datetime,
    *,
    prompt: str | None = None,
    sinks: Mapping[str, AlertSink] | None = None,
) -> list[AlertRow]:
    """Fire the `calibration` rule for each registered prompt version (one `prompt`, or all)
    whose ECE over the last [observe.alerts.calibration] window_s is above max_ece, once it
    has min_sample pairs. Blocking (database, webhooks): call it in a worker thread. Returns
    the alerts raised; none when the section is not set."""
    wanted = settings.calibration
    if wanted is None:
        return []
    rule = wanted.rule()
    since = now - timedelta(seconds=wanted.window_s)
    alerter = Alerter(engine, sinks if sinks is not None else build_sinks(settings),
                      background=False)  # fmt: skip
    cooldowns = Cooldowns(engine)
    raised: list[AlertRow] = []
    for name, version in _with_truth(engine, since):
        if prompt is not None and name != prompt:
            continue
        sample = calibration_of_prompt(engine, name, version, since)
        if sample.size < wanted.min_sample:
            continue
        ece = sample.reliability(wanted.bins).ece
        key: Key = (CALIBRATION_RULE, name, version)
        if ece <= wanted.max_ece or cooldowns.quiet(rule, key, now):
            continue
        cooldowns.last[key] = now
        text = (
            f"confidence ECE = {ece:.3g}, above {wanted.max_ece:g}, over {sample.size} answers "
            f"with known truth ({sample.from_feedback} feedback, {sample.from_canaries} canary)"
        )
        alert = AlertRow(now, CALIBRATION_RULE, name, version, "ece", ece, wanted.max_ece, text)
        raised.append(alerter.fire(rule, alert))
    return raised


def _with_truth(engine: Engine, since: datetime) -> list[tuple[str, str]]:
    """Registered prompt versions with feedback or signals since `since` (a spec file run
    without the registry has no version and is left out)."""
    r, f = requests.c, feedback.c
    query = (
        select(r.prompt, r.prompt_version)
        .join(feedback, f.request_id == r.id)
        .where(r.at >= utc_bound(since))
        .distinct()
    )
    with engine.connect() as conn:
        found = {(row.prompt, row.prompt_version) for row in conn.execute(query)}
    found |= set(prompt_versions(engine, since=since))
    return sorted((p, v) for p, v in found if p is not None and v is not None)


async def calibration_check_loop(engine: Engine, settings: AlertSettings) -> None:
    """Run `check_calibration` every check_interval_s until cancelled (the gateway's lifespan
    starts it as a task); returns at once without [observe.alerts.calibration]. A failed
    round is logged; the next one still runs."""
    if settings.calibration is None:
        return
    await every(
        settings.check_interval_s,
        lambda: check_calibration(engine, settings, datetime.now(UTC)),
        "calibration check",
    )
