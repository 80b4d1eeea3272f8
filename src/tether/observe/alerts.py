"""The alert engine: rules checked as signals arrive, and drift rules over time windows
checked on a schedule. A rule that fires stores an alert and notifies its sinks, then stays
quiet for its cooldown, so one lasting condition raises one alert, not one per request.

`AlertEngine` is a signal listener: the signal worker calls it, in its own thread, with each
request's signals. Rules with a window in requests are checked there: a level rule (mean, rate,
p95) after every request once the window holds `min_sample` values; a drift rule once per full
recent window, against the baseline window of values that left it (disjoint windows, so each
test's false-alarm rate is its threshold). Drift rules with a window in seconds are checked by
`run_drift_checks`, which the gateway runs every `check_interval_s` in a worker thread; so is
input drift (`drift:input_embedding`), which embeds both windows' logged inputs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from tether.observe.alert_rules import AlertRule, AlertSettings
from tether.observe.alert_sinks import AlertSink, build_sinks, deliver
from tether.observe.bursts import lowest_priority
from tether.observe.config import NO_EMBEDDER
from tether.observe.detectors import shared_embedder
from tether.observe.drift import (
    chi2_homogeneity,
    embedding_drift,
    input_windows,
    ks_2samp,
    numeric_bins,
    permutations_for,
    psi,
)
from tether.store.alerts import AlertRow, add_alert, last_alert_at, set_delivered
from tether.store.requests_inputs import logged_versions
from tether.store.signals import pair_order, prompt_versions, signal_series

if TYPE_CHECKING:
    from tether.cache.embedders.base import Embedder
    from tether.observe.signals import SignalInput
    from tether.store.signals import Signal

logger = logging.getLogger("tether.alerts")
MAX_POINTS = 50_000  # per window read from the store by a scheduled check
Key = tuple[str, str | None, str | None]  # rule, prompt, version


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float | None
    label: str | None


@dataclass(frozen=True)
class Window:
    values: list[float]
    labels: list[str]

    @classmethod
    def of(cls, points: Sequence[Point]) -> Window:
        values = [p.value for p in points if p.label is None and p.value is not None]
        return cls(values, [p.label for p in points if p.label is not None])

    @property
    def size(self) -> int:
        return len(self.values) + len(self.labels)


def level(rule: AlertRule, window: Window) -> float | None:
    """A level rule's statistic over one window; None when the window has no values for it.
    `rate` is the share of labels equal to `rule.label`, or else the share of values at or
    above 0.5 (a 0/1 signal such as `valid` counts its ones)."""
    if rule.statistic == "rate":
        if rule.label is not None:
            return window.labels.count(rule.label) / len(window.labels) if window.labels else None
        return float(np.mean(np.asarray(window.values) >= 0.5)) if window.values else None
    if not window.values:
        return None
    if rule.statistic == "p95":
        return float(np.percentile(window.values, 95))
    return float(np.mean(window.values))


def drift_statistic(rule: AlertRule, baseline: Window, recent: Window) -> float:
    """A drift rule's statistic between two windows (labels when the signal has them)."""
    if rule.statistic == "ks_p":
        return ks_2samp(baseline.values, recent.values)[1]
    b: Mapping[str, int]
    r: Mapping[str, int]
    if baseline.labels or recent.labels:
        b, r = Counter(baseline.labels), Counter(recent.labels)
    else:
        b, r = numeric_bins(baseline.values, recent.values)
    if rule.statistic == "psi":
        return psi(b, r)
    return chi2_homogeneity(b, r)[1]


def crossed(rule: AlertRule, value: float) -> bool:
    return value < rule.threshold if rule.fires_below else value > rule.threshold


def message(
    rule: AlertRule, value: float, recent: int, baseline: int | None = None, *, unit: str = "values"
) -> str:
    side = "below" if rule.fires_below else "above"
    against = f" against a baseline of {baseline}" if baseline is not None else ""
    label = f" ({rule.label})" if rule.label is not None else ""
    return (
        f"{rule.watched}{label} {rule.statistic} = {value:.4g}, {side} {rule.threshold:g}, "
        f"over {recent} recent {unit}{against}"
    )


@dataclass
class _Series:
    """One rule's window over one prompt version, kept in memory."""

    recent: deque[Point]
    baseline: deque[Point] | None = None  # drift rules
    since_check: int = 0


@dataclass
class Cooldowns:
    """When each rule last fired per prompt version; asks the store after a restart."""

    engine: Engine | None
    last: dict[Key, datetime | None] = field(default_factory=dict)

    def quiet(self, rule: AlertRule, key: Key, now: datetime) -> bool:
        if key not in self.last:
            self.last[key] = self._stored(key)
        last = self.last[key]
        return last is not None and now - last < timedelta(seconds=rule.cooldown_s)

    def _stored(self, key: Key) -> datetime | None:
        if self.engine is None:
            return None
        try:
            return last_alert_at(self.engine, *key)
        except SQLAlchemyError:
            logger.warning("alerts: could not read when rule %s last fired", key[0])
            return None


class Alerter:
    """Stores an alert and hands it to its sinks (in the background, or inline)."""

    def __init__(
        self,
        engine: Engine | None,
        sinks: Mapping[str, AlertSink],
        *,
        background: bool = True,
    ) -> None:
        self.engine = engine
        self.sinks = sinks
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-alerts")
            if background
            else None
        )
        self.fired: deque[AlertRow] = deque(maxlen=100)

    def fire(self, rule: AlertRule, alert: AlertRow) -> AlertRow:
        stored = alert
        if self.engine is not None:
            try:
                stored = _with_id(alert, add_alert(self.engine, alert))
            except SQLAlchemyError:
                logger.exception("alerts: could not store the alert of rule %s", rule.name)
        self.fired.append(stored)
        if self._executor is not None:
            self._executor.submit(self._deliver, rule.sinks, stored)
            return stored
        return self._deliver(rule.sinks, stored)

    def _deliver(self, names: list[str] | None, alert: AlertRow) -> AlertRow:
        outcomes = deliver(self.sinks, alert, names)
        if self.engine is not None and alert.id is not None:
            try:
                set_delivered(self.engine, alert.id, outcomes)
            except SQLAlchemyError:
                logger.exception("alerts: could not record deliveries of alert %s", alert.id)
        return _with_delivered(alert, outcomes)

    def close(self) -> None:
        """Wait for the deliveries under way."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def _with_id(alert: AlertRow, alert_id: int) -> AlertRow:
    return AlertRow(**{**alert.__dict__, "id": alert_id})


def _with_delivered(alert: AlertRow, outcomes: dict[str, dict[str, object]]) -> AlertRow:
    return AlertRow(**{**alert.__dict__, "delivered": outcomes})


class AlertEngine:
    """The signal listener: `engine(inp, signals)` per request (signal worker thread)."""

    def __init__(
        self,
        engine: Engine | None,
        settings: AlertSettings,
        *,
        sinks: Mapping[str, AlertSink] | None = None,
        background: bool = True,
    ) -> None:
        self.settings = settings
        # Time-window drift rules are read from the store by run_drift_checks instead.
        scheduled = scheduled_rules(settings)
        self.rules = [r for r in settings.rules if r not in scheduled]
        self.alerter = Alerter(
            engine, sinks if sinks is not None else build_sinks(settings), background=background
        )
        self._cooldowns = Cooldowns(engine)
        self._series: dict[Key, _Series] = {}

    @property
    def fired(self) -> list[AlertRow]:
        return list(self.alerter.fired)

    def __call__(self, inp: SignalInput, signals: list[Signal]) -> None:
        by_name = {s.name: s for s in signals}
        for rule in self.rules:
            if rule.prompt is not None and inp.prompt != rule.prompt:
                continue
            signal = by_name.get(rule.watched)
            if signal is None or (signal.value is None and signal.label is None):
                continue
            point = Point(inp.at, signal.value, signal.label)
            try:
                self._observe(rule, (rule.name, inp.prompt, inp.version), point)
            except Exception:  # one broken rule must not silence the others
                logger.exception("alerts: rule %s failed", rule.name)

    def _observe(self, rule: AlertRule, key: Key, point: Point) -> None:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _new_series(rule)
        if rule.window_s is not None:
            series.recent.append(point)
            cutoff = point.at - timedelta(seconds=rule.window_s)
            while series.recent and series.recent[0].at < cutoff:
                series.recent.popleft()
        elif series.baseline is not None:
            if len(series.recent) == series.recent.maxlen:
                series.baseline.append(series.recent[0])
            series.recent.append(point)
            series.since_check += 1
        else:
            series.recent.append(point)
        found = self._check(rule, series)
        if found is not None:
            value, text = found
            self._fire(rule, key, point.at, value, text)

    def _check(self, rule: AlertRule, series: _Series) -> tuple[float, str] | None:
        recent = Window.of(list(series.recent))
        if series.baseline is None:
            if recent.size < rule.min_sample:
                return None
            value = level(rule, recent)
            if value is None or not crossed(rule, value):
                return None
            return value, message(rule, value, recent.size)
        window = rule.window_requests
        assert window is not None
        if series.since_check < window:
            return None
        series.since_check = 0  # the next check is one whole window later
        baseline = Window.of(list(series.baseline))
        if min(recent.size, baseline.size) < rule.min_sample:
            return None
        value = drift_statistic(rule, baseline, recent)
        if not crossed(rule, value):
            return None
        return value, message(rule, value, recent.size, baseline.size)

    def _fire(self, rule: AlertRule, key: Key, at: datetime, value: float, text: str) -> None:
        if self._cooldowns.quiet(rule, key, at):
            return
        self._cooldowns.last[key] = at
        _, prompt, version = key
        self.alerter.fire(
            rule, AlertRow(at, rule.name, prompt, version, rule.signal, value, rule.threshold, text)
        )

    def close(self) -> None:
        self.alerter.close()


def _new_series(rule: AlertRule) -> _Series:
    if rule.window_s is not None:
        return _Series(deque())
    window = rule.window_requests
    assert window is not None
    if rule.is_drift:
        return _Series(deque(maxlen=window), deque(maxlen=rule.baseline_size))
    return _Series(deque(maxlen=window))


# -- scheduled drift checks ---------------------------------------------------------------------


def scheduled_rules(settings: AlertSettings) -> list[AlertRule]:
    """The rules `run_drift_checks` reads from the store: drift rules over seconds."""
    return [r for r in settings.rules if r.is_drift and r.window_s is not None]


def run_drift_checks(
    engine: Engine,
    settings: AlertSettings,
    now: datetime,
    *,
    sinks: Mapping[str, AlertSink] | None = None,
    embedder: Embedder | None = None,
) -> list[AlertRow]:
    """Check every drift rule with a window in seconds: for each prompt version with signals
    (or, for input drift, logged inputs) in the recent window [now - window_s, now), compare
    it with the baseline window before it. Input drift rules need `embedder`; without one they
    are skipped. Blocking (database, embedding, webhooks): call it in a worker thread. Returns
    the alerts raised."""
    if embedder is None:
        settings = without_input_rules(settings)
    rules = scheduled_rules(settings)
    if not rules:
        return []
    alerter = Alerter(engine, sinks if sinks is not None else build_sinks(settings),
                      background=False)  # fmt: skip
    cooldowns = Cooldowns(engine)
    raised: list[AlertRow] = []
    for rule in rules:
        assert rule.window_s is not None
        start = now - timedelta(seconds=rule.window_s)
        first = start - timedelta(seconds=rule.baseline_seconds)
        pairs = prompt_versions(engine, since=start)
        if rule.watches_inputs:  # the request log may be on with signals off
            pairs = sorted(set(pairs) | set(logged_versions(engine, since=start)), key=pair_order)
        for prompt, version in pairs:
            if prompt is None or (rule.prompt is not None and prompt != rule.prompt):
                continue
            key: Key = (rule.name, prompt, version)
            if rule.watches_inputs:
                assert embedder is not None
                try:
                    found = check_inputs(engine, rule, key, now, embedder, settings, cooldowns)
                except Exception:  # a failing model must not silence the other rules
                    logger.exception("alerts: input drift rule %s failed", rule.name)
                    continue
                if found is not None:
                    raised.append(alerter.fire(rule, found))
                continue

            recent = read_window(engine, prompt, version, rule.watched, start, now)
            baseline = read_window(engine, prompt, version, rule.watched, first, start)
            if min(recent.size, baseline.size) < rule.min_sample:
                continue
            value = drift_statistic(rule, baseline, recent)
            if not crossed(rule, value) or cooldowns.quiet(rule, key, now):
                continue
            cooldowns.last[key] = now
            text = message(rule, value, recent.size, baseline.size)
            alert = AlertRow(now, rule.name, prompt, version, rule.signal, value,
                             rule.threshold, text)  # fmt: skip
            raised.append(alerter.fire(rule, alert))
    return raised


def check_inputs(
    engine: Engine,
    rule: AlertRule,
    key: Key,
    now: datetime,
    embedder: Embedder,
    settings: AlertSettings,
    cooldowns: Cooldowns,
) -> AlertRow | None:
    """An input drift rule over one prompt version: both windows' logged inputs (the newest
    500 of each), embedded and tested by their mean; the alert to fire, or None."""
    assert rule.window_s is not None
    _, prompt, version = key
    assert prompt is not None
    old, new = input_windows(engine, prompt, version, now=now,
                             recent=timedelta(seconds=rule.window_s),
                             baseline=timedelta(seconds=rule.baseline_seconds))  # fmt: skip
    # Before embedding, the costly part: too few inputs, or a rule still in its cooldown.
    if min(len(old), len(new)) < rule.min_sample or cooldowns.quiet(rule, key, now):
        return None
    vectors = np.asarray(embedder.embed([i.text for i in [*old, *new]]), dtype=np.float64)
    # Enough permutations that a p-value below the rule's threshold is possible at all.
    permutations = permutations_for(settings.drift.model_copy(update={"p_value": rule.threshold}))
    distance, value = embedding_drift(vectors[: len(old)], vectors[len(old) :],
                                      permutations=permutations)  # fmt: skip
    if not crossed(rule, value):
        return None
    cooldowns.last[key] = now
    text = (
        f"{message(rule, value, len(new), len(old), unit='inputs')}; "
        f"mean embedding distance {distance:.4f}"
    )
    return AlertRow(now, rule.name, prompt, version, rule.signal, value, rule.threshold, text)


def without_input_rules(settings: AlertSettings) -> AlertSettings:
    """The settings less their input drift rules, with one log line when there were any:
    what runs without an embedder."""
    skipped = [r.name for r in settings.rules if r.watches_inputs]
    if not skipped:
        return settings
    logger.warning('alerts: input drift rule(s) %s skipped: no embedder ([observe] '
                   'evasive_embedder = "none")', ", ".join(skipped))  # fmt: skip
    rules = [r for r in settings.rules if not r.watches_inputs]
    return settings.model_copy(update={"rules": rules})


def input_embedder(settings: AlertSettings, kind: str) -> Embedder | None:
    """The embedder input drift rules need: the signal worker's own (`kind`, [observe]
    evasive_embedder), shared; None without such rules or with the embedder off."""
    if kind == NO_EMBEDDER or not any(r.watches_inputs for r in scheduled_rules(settings)):
        return None
    return shared_embedder(kind)


def read_window(
    engine: Engine,
    prompt: str | None,
    version: str | None,
    name: str,
    since: datetime,
    until: datetime,
) -> Window:
    """One signal's stored values in [since, until) (the latest MAX_POINTS)."""
    points = signal_series(engine, prompt=prompt, version=version, name=name, since=since,
                           until=until, limit=MAX_POINTS)  # fmt: skip
    return Window.of([Point(p.at, p.value, p.label) for p in points])


async def drift_check_loop(
    engine: Engine, settings: AlertSettings, *, embedder: Embedder | None = None
) -> None:
    """Run `run_drift_checks` every `check_interval_s` until cancelled (the gateway's
    lifespan starts it as a task); returns at once without such rules. A failed round is
    logged; the next one still runs. `embedder` embeds the inputs of input drift rules."""
    if embedder is None:
        settings = without_input_rules(settings)  # said once here, not every round
    if not scheduled_rules(settings):
        return
    await every(
        settings.check_interval_s,
        lambda: run_drift_checks(engine, settings, datetime.now(UTC), embedder=embedder),
        "drift check",
    )


async def every(interval_s: float, work: Callable[[], object], what: str) -> None:
    """Run blocking `work` every `interval_s` until cancelled, on a thread of its own at the
    lowest CPU priority (a drift check embeds up to a thousand inputs: requests come first);
    a failed round is logged and the next one still runs."""
    name = "tether-" + what.replace(" ", "-")
    pool = ThreadPoolExecutor(1, thread_name_prefix=name, initializer=lowest_priority)
    loop = asyncio.get_running_loop()
    try:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await loop.run_in_executor(pool, work)
            except Exception:
                logger.exception("alerts: the scheduled %s failed", what)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # a round under way ends on its own
