"""Readiness of a prompt for production: its test cases (and a dataset's) plus edge cases made
from its inputs schema, run concurrently through the client; latency, throughput, cost,
conformity, accuracy, calibration and failure modes, and a verdict against thresholds.

Each request goes through the evals runner (`run_case`), which keeps the output, the error and
the assertions' outcomes; a thin view of the client beside it notes what the runner does not
keep: how many attempts the request took and the type of the error that ended it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any, cast

import orjson

from tether.client import Client
from tether.errors import TetherError
from tether.evals.advisor import percentile
from tether.evals.assertions import Services
from tether.evals.readiness_edges import (
    INJECTED,
    REFUSALS,
    EdgeCase,
    classify,
    system_fragments,
)
from tether.evals.runner import CaseResult, run_case
from tether.observe.calibration_error import Reliability, reliability
from tether.observe.signals import SchemaFields, value_at
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.spec import TestCase
from tether.result import Result

TEST, DATASET, EDGE = "test", "dataset", "edge"


@dataclass(frozen=True)
class Thresholds:
    min_accuracy: float = 0.9
    min_conformity: float = 0.99
    max_p95_ms: float | None = None
    max_injections: int = 0  # followed injections tolerated


@dataclass(frozen=True)
class Request:
    """One request of the run and how it ended."""

    result: CaseResult
    source: str  # test, dataset or edge
    attempts: int  # model calls made (0: refused before any)
    error_type: str  # the error's class name; "" when it answered with a valid output
    outcome: str = ""  # edge cases: one of readiness_edges.OUTCOMES
    why: str = ""  # why an injection counts as followed
    confidence: float | None = None  # the output's own confidence field, when it has one
    edge: EdgeCase | None = None

    @property
    def valid(self) -> bool:
        return not self.result.error

    @property
    def reached_model(self) -> bool:
        """A refusal may carry the attempt it stopped (a prompt past the context window)."""
        return self.attempts > 0 and self.error_type not in REFUSALS


class _Observed:
    """The client as `run_case` sees it: every call passes through, its attempts and its
    error's type are noted."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.attempts = 0
        self.error_type = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def run_compiled(
        self,
        compiled: CompiledPrompt,
        inputs: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        **params: Any,
    ) -> Result[Any]:
        try:
            result = self._client.run_compiled(compiled, inputs, model=model, **params)
        except TetherError as exc:
            self.attempts, self.error_type = len(exc.attempts), type(exc).__name__
            raise
        self.attempts = len(result.attempts)
        return result


@dataclass(frozen=True)
class Readiness:
    prompt: str
    version: str
    model: str
    concurrency: int
    wall_s: float
    requests: tuple[Request, ...]
    thresholds: Thresholds
    has_confidence: bool
    calibration: Reliability | None  # over the cases with a truth and a usable confidence

    # -- slices --------------------------------------------------------------------------------

    @property
    def cases(self) -> list[Request]:
        """Requests with a truth to check: the spec's tests and the dataset's cases."""
        return [r for r in self.requests if r.source != EDGE]

    @property
    def edges(self) -> list[Request]:
        return [r for r in self.requests if r.source == EDGE]

    @property
    def answered(self) -> list[Request]:
        return [r for r in self.requests if r.reached_model]

    # -- numbers -------------------------------------------------------------------------------

    def latency_ms(self, pct: float) -> float:
        return 1000 * percentile([r.result.call_s for r in self.answered], pct)

    @property
    def throughput(self) -> float:
        """Requests that reached a model, per second of the run (refusals take no time)."""
        return len(self.answered) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def total_cost_usd(self) -> float:
        return sum(r.result.cost_usd for r in self.requests)

    @property
    def cost_per_request_usd(self) -> float:
        answered = self.answered
        return sum(r.result.cost_usd for r in answered) / len(answered) if answered else 0.0

    @property
    def conformity(self) -> float | None:
        """Share of the requests that reached a model whose output met the contract."""
        answered = self.answered
        return sum(r.valid for r in answered) / len(answered) if answered else None

    @property
    def repaired(self) -> int:
        """Valid outputs that needed more than one attempt."""
        return sum(1 for r in self.answered if r.valid and r.attempts > 1)

    @property
    def extra_attempts(self) -> int:
        return sum(max(r.attempts - 1, 0) for r in self.answered)

    @property
    def failures_by_type(self) -> Counter[str]:
        return Counter(r.error_type for r in self.requests if not r.valid)

    @property
    def accuracy(self) -> float | None:
        cases = self.cases
        return sum(r.result.passed for r in cases) / len(cases) if cases else None

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(r.outcome for r in self.edges)

    # -- verdict -------------------------------------------------------------------------------

    @property
    def reasons(self) -> list[str]:
        """Why the prompt is not ready; none: it is."""
        t, reasons = self.thresholds, []
        accuracy, conformity = self.accuracy, self.conformity
        if accuracy is None:
            reasons.append("accuracy not measured: no test cases (add `tests:` or --dataset)")
        elif accuracy < t.min_accuracy:
            reasons.append(f"accuracy {accuracy:.1%} below {t.min_accuracy:.1%}")
        if conformity is None:
            reasons.append("no request reached a model")
        elif conformity < t.min_conformity:
            reasons.append(f"conformity {conformity:.1%} below {t.min_conformity:.1%}")
        p95 = self.latency_ms(95)
        if t.max_p95_ms is not None and self.answered and p95 > t.max_p95_ms:
            reasons.append(f"p95 latency {p95:.0f} ms above {t.max_p95_ms:g} ms")
        followed = self.outcomes[INJECTED]
        if followed > t.max_injections:
            reasons.append(f"{followed} injection(s) followed (at most {t.max_injections})")
        return reasons

    @property
    def ready(self) -> bool:
        return not self.reasons


def text_of(output: Any, raw: str) -> str:
    """What the model said: the raw text, else the output as JSON."""
    if raw:
        return raw
    if output is None:
        return ""
    return output if isinstance(output, str) else orjson.dumps(output).decode()


def _confidence(fields: SchemaFields | None, result: CaseResult) -> float | None:
    if fields is None or fields.confidence is None or result.error:
        return None
    value = value_at(result.output, fields.confidence)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


Job = tuple[str, TestCase, EdgeCase | None]


def run_readiness(
    client: Client,
    compiled: CompiledPrompt,
    services: Services,
    *,
    dataset: Sequence[TestCase] = (),
    edges: Sequence[EdgeCase] = (),
    model: str | None = None,
    concurrency: int = 4,
    folder: Path | None = None,
    thresholds: Thresholds = Thresholds(),
    on_request: Callable[[Request], None] | None = None,
    warm_up: bool = True,
) -> Readiness:
    """Every case and edge case, `concurrency` at a time; the report's numbers. `warm_up`: one
    untimed, uncounted call first, so that no request is timed with the client's or the
    model's one-time start (the event loop, the database, a local model's weights)."""
    jobs: list[Job] = [(TEST, case, None) for case in compiled.spec.tests]
    jobs += [(DATASET, case, None) for case in dataset]
    jobs += [(EDGE, TestCase(name=e.name, inputs=e.inputs), e) for e in edges]
    schema = compiled.contract.schema if compiled.contract is not None else None
    fields = SchemaFields.of(schema) if schema is not None else None
    fragments = system_fragments(compiled)

    def one(job: Job) -> Request:
        source, case, edge = job
        observed = _Observed(client)
        result = run_case(cast(Client, observed), compiled, case, services, model=model,
                          folder=folder)  # fmt: skip
        request = Request(result, source, observed.attempts, observed.error_type,
                          confidence=_confidence(fields, result))  # fmt: skip
        if edge is not None:
            outcome, why = classify(
                edge,
                answered=request.reached_model,
                valid=request.valid,
                error_type=observed.error_type,
                text=text_of(result.output, result.raw),
                fragments=fragments,
            )
            request = Request(result, source, request.attempts, request.error_type, outcome,
                              why, request.confidence, edge)  # fmt: skip
        if on_request is not None:
            on_request(request)
        return request

    if warm_up and jobs:
        with suppress(TetherError):  # the request meets the same error and reports it
            client.run_compiled(compiled, jobs[0][1].inputs, model=model)
    started = perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        requests = tuple(pool.map(one, jobs))
    wall_s = perf_counter() - started
    has_confidence = fields is not None and fields.confidence is not None
    used = next((r.result.model for r in requests if r.reached_model), None)
    return Readiness(
        prompt=compiled.spec.name,
        version=compiled.spec.version,
        model=used or model or compiled.spec.model or client.settings.default_model,
        concurrency=concurrency,
        wall_s=wall_s,
        requests=requests,
        thresholds=thresholds,
        has_confidence=has_confidence,
        calibration=_calibration(requests) if has_confidence else None,
    )


def _calibration(requests: Sequence[Request]) -> Reliability:
    pairs = [(r.confidence, r.result.passed) for r in requests if r.source != EDGE]
    usable = [(c, right) for c, right in pairs if c is not None and 0 <= c <= 1]
    return reliability([c for c, _ in usable], [right for _, right in usable])
