"""Canaries: reference requests with expected answers, run now and then through the normal
pipeline to see that a prompt still answers as it should (a model changed behind its name, a
provider degraded). A canary is a registered prompt's test case (`tests:` in its spec) or one
listed under [[observe.alerts.canaries]]; it passes when all its assertions hold.

Canary requests are logged under the endpoint `canary.run` and never served from the response
cache. Each run leaves a `canary` signal on its request (1 passed, 0 failed), which calibration
reads as truth. The `canary` rule fires when the pass rate of a prompt version's latest runs
falls below [observe.alerts.canary] min_pass_rate (by default any failure); the alert is stored
and delivered by the alert engine's Alerter, like every other rule's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.from_thread
import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from tether.client import Client
from tether.errors import TetherError
from tether.evals.runner import CaseResult, run_case
from tether.evals.services import ClientServices
from tether.observe.alert_rules import CANARY_RULE, AlertSettings, Canary, CanarySchedule
from tether.observe.alert_sinks import AlertSink, build_sinks
from tether.observe.alerts import Alerter, Cooldowns, Key
from tether.observe.calibration_error import CANARY_SIGNAL
from tether.pipeline.context import Ask, Context
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.registry import PromptVersion
from tether.prompts.spec import TestCase
from tether.result import Result
from tether.runtime import Runtime
from tether.store.alerts import AlertRow
from tether.store.signals import SignalRow, add_signal_rows, signal_series

logger = logging.getLogger("tether.alerts")
CANARY_ENDPOINT = "canary.run"


@dataclass(frozen=True)
class CanaryCase:
    """One canary, resolved to a registered prompt version."""

    prompt: str
    version: str
    name: str
    source: str  # "test" (the spec's test case) or "settings"
    case: TestCase
    compiled: CompiledPrompt


@dataclass(frozen=True)
class CanaryResult:
    prompt: str
    version: str
    canary: str
    source: str
    passed: bool
    latency_s: float  # the model call alone
    why: str  # the failed assertions, empty when it passed
    model: str
    request_id: str | None


class _CanaryClient(Client):
    """Runs a case's prompt by its registered version under the canary endpoint, past the
    cache, and remembers each request's id (the runner only sees the result)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime=runtime)
        self.entry = "canary"
        self.last_request: str | None = None

    def run_compiled(
        self,
        compiled: CompiledPrompt,
        inputs: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        **params: Any,
    ) -> Result[Any]:
        ask = Ask(CANARY_ENDPOINT, prompt=compiled.spec.name, version=compiled.spec.version,
                  inputs=inputs or {}, model=model, cache="off")  # fmt: skip
        ctx = Context(ask)
        self.last_request = ctx.request_id
        if _in_worker_thread():  # the gateway's schedule: run on its event loop, like requests
            return anyio.from_thread.run(self.runtime.pipeline.run, ctx).result
        return self.runtime.run_sync(ctx).result

    def close(self) -> None:
        """The runtime belongs to the caller."""


def _in_worker_thread() -> bool:
    """Whether this thread was started by anyio.to_thread from an event loop."""
    try:
        anyio.from_thread.check_cancelled()
    except RuntimeError:  # NoEventLoopError: plain synchronous code
        return False
    return True


def _runtime(client_or_runtime: Client | Runtime) -> Runtime:
    return client_or_runtime.runtime if isinstance(client_or_runtime, Client) else client_or_runtime


def has_canaries(settings: AlertSettings) -> bool:
    return bool(settings.canaries or settings.canary.prompts)


def canary_cases(
    runtime: Runtime, settings: AlertSettings, prompt: str | None = None
) -> list[CanaryCase]:
    """The canaries to run: of one prompt (its test cases and listed canaries), or of every
    prompt under [observe.alerts.canary] prompts plus every listed canary."""
    schedule = settings.canary
    tested = [prompt] if prompt is not None else list(schedule.prompts)
    listed = [c for c in settings.canaries if prompt is None or c.prompt == prompt]
    cases: list[CanaryCase] = []
    for name in dict.fromkeys(tested):
        found = _version(runtime, name, None, schedule)
        compiled = runtime.registry.compiled(found)
        for case in found.spec.tests:
            cases.append(CanaryCase(name, found.version, case.name, "test", case, compiled))
    numbers: dict[str, int] = {}
    for canary in listed:
        found = _version(runtime, canary.prompt, canary.version, schedule)
        numbers[canary.prompt] = numbers.get(canary.prompt, 0) + 1
        label = canary.name or f"{canary.prompt} #{numbers[canary.prompt]}"
        case = _as_case(canary, label)
        cases.append(CanaryCase(canary.prompt, found.version, label, "settings", case,
                                runtime.registry.compiled(found)))  # fmt: skip
    if prompt is not None and not cases:
        raise TetherError(
            f"prompt {prompt!r} has no canaries",
            fix="add test cases (tests:) to its spec and push it, or list one under "
            "[[observe.alerts.canaries]] with prompt = " + repr(prompt),
        )
    return cases


def _as_case(canary: Canary, name: str) -> TestCase:
    return TestCase.model_validate(
        {"name": name, "inputs": canary.inputs, "assert": [a.model_dump() for a in canary.expect]}
    )


def _version(
    runtime: Runtime, prompt: str, version: str | None, schedule: CanarySchedule
) -> PromptVersion:
    registry = runtime.registry
    if version is not None:
        return registry.get(prompt, version=version)
    labelled = registry.labels(prompt).get(schedule.label)
    return registry.get(prompt, version=labelled)  # without the label: the highest version


def run_canaries(
    client_or_runtime: Client | Runtime,
    settings: AlertSettings,
    prompt: str | None = None,
    *,
    monitor: CanaryMonitor | None = None,
    alert: bool = True,
) -> list[CanaryResult]:
    """Run the canaries now (blocking: call it off the event loop) and, with `alert`, fire the
    `canary` rule where a prompt version's pass rate fell below the threshold."""
    runtime = _runtime(client_or_runtime)
    cases = canary_cases(runtime, settings, prompt)
    client = _CanaryClient(runtime)
    services = ClientServices(client)
    model = settings.canary.model
    results = []
    for canary in cases:
        client.last_request = None
        outcome = run_case(client, canary.compiled, canary.case, services, model=model)
        results.append(_result(canary, outcome, client.last_request))
    if runtime.logging:
        _store_verdicts(runtime, results)
    if alert:
        (monitor or CanaryMonitor(runtime, settings)).check(results)
    return results


def _result(canary: CanaryCase, outcome: CaseResult, request_id: str | None) -> CanaryResult:
    failed = [f"{a.label}: {a.outcome.detail}" for a in outcome.assertions if not a.outcome.passed]
    return CanaryResult(canary.prompt, canary.version, canary.name, canary.source,
                        outcome.passed, outcome.call_s, "; ".join(failed), outcome.model,
                        request_id)  # fmt: skip


def _store_verdicts(runtime: Runtime, results: Sequence[CanaryResult]) -> None:
    now = datetime.now(UTC)
    rows = [
        SignalRow(
            r.request_id,
            now,
            r.prompt,
            r.version,
            r.model,
            None,
            CANARY_SIGNAL,
            1.0 if r.passed else 0.0,
            None,
        )
        for r in results
        if r.request_id is not None
    ]
    try:
        add_signal_rows(runtime.engine, rows)
    except SQLAlchemyError:
        logger.exception("canaries: could not store the verdicts")


class CanaryMonitor:
    """The `canary` rule: the pass rate of each prompt version's latest runs against the
    threshold. The runs come from the stored `canary` signals when requests are recorded,
    else from the runs this monitor has seen."""

    def __init__(
        self,
        runtime: Runtime,
        settings: AlertSettings,
        *,
        sinks: Mapping[str, AlertSink] | None = None,
    ) -> None:
        self.runtime = runtime
        self.schedule = settings.canary
        self.rule = settings.canary.rule()
        engine = runtime.engine
        self.alerter = Alerter(engine, sinks if sinks is not None else build_sinks(settings),
                               background=False)  # fmt: skip
        self._cooldowns = Cooldowns(engine)
        self._seen: dict[tuple[str, str], deque[bool]] = {}

    def check(self, results: Sequence[CanaryResult], now: datetime | None = None) -> list[AlertRow]:
        at = now or datetime.now(UTC)
        raised = []
        by_version: dict[tuple[str, str], list[CanaryResult]] = {}
        for r in results:
            by_version.setdefault((r.prompt, r.version), []).append(r)
        for (prompt, version), runs in by_version.items():
            seen = self._seen.setdefault((prompt, version), deque(maxlen=self.schedule.window))
            seen.extend(r.passed for r in runs)
            history = self._history(prompt, version) or list(seen)
            rate = sum(history) / len(history)
            key: Key = (CANARY_RULE, prompt, version)
            if rate >= self.schedule.min_pass_rate or self._cooldowns.quiet(self.rule, key, at):
                continue
            self._cooldowns.last[key] = at
            alert = AlertRow(at, CANARY_RULE, prompt, version, CANARY_SIGNAL, rate,
                             self.schedule.min_pass_rate,
                             _message(rate, self.schedule, len(history), runs))  # fmt: skip
            raised.append(self.alerter.fire(self.rule, alert))
        return raised

    def _history(self, prompt: str, version: str) -> list[bool]:
        if not self.runtime.logging:
            return []
        try:
            points = signal_series(self.runtime.engine, prompt=prompt, version=version,
                                   name=CANARY_SIGNAL, limit=self.schedule.window)  # fmt: skip
        except SQLAlchemyError:
            logger.exception("canaries: could not read the latest runs")
            return []
        return [p.value is not None and p.value >= 0.5 for p in points]


def _message(rate: float, schedule: CanarySchedule, runs: int, now: Sequence[CanaryResult]) -> str:
    failed = [f"{r.canary} ({r.why})" if r.why else r.canary for r in now if not r.passed]
    text = (
        f"canary pass rate = {rate:.3g}, below {schedule.min_pass_rate:g}, over the latest "
        f"{runs} runs"
    )
    return text + (f"; failed now: {', '.join(failed)}" if failed else "")


async def pause(seconds: float) -> None:
    """The wait between rounds (its own name, so tests can stand in for it alone)."""
    await asyncio.sleep(seconds)


async def canary_loop(client_or_runtime: Client | Runtime, settings: AlertSettings) -> None:
    """Run the canaries every [observe.alerts.canary] interval_s until cancelled (the gateway's
    lifespan starts it as a task); returns at once when there are none. A failed round is
    logged; the next one still runs."""
    if not has_canaries(settings):
        return
    runtime = _runtime(client_or_runtime)
    monitor: CanaryMonitor | None = None
    while True:
        await pause(settings.canary.interval_s)
        try:
            if monitor is None:
                monitor = await anyio.to_thread.run_sync(CanaryMonitor, runtime, settings)
            await anyio.to_thread.run_sync(
                functools.partial(run_canaries, runtime, settings, monitor=monitor)
            )
        except Exception:
            logger.exception("canaries: the scheduled run failed")
