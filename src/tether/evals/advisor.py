"""Which model to use for a prompt: run its test cases on each candidate model, then weigh pass
rate against cost and latency.

A model is a candidate when it is a chat model and its pre-flight accepts the prompt's output
contract; the others are skipped with the reason. Each candidate runs every case (as `tether
test` runs them). The recommendation is the cheapest model (by mean cost per request) whose pass
rate meets the threshold; ties go to the higher pass rate, then the lower median latency.
A model is on the Pareto frontier when no other model is at least as good on pass rate, mean
cost and median latency and better on one of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tether.client import Client
from tether.errors import TetherError
from tether.evals.assertions import Services
from tether.evals.runner import CaseResult, run_tests
from tether.prompts.compiled import CompiledPrompt

DEFAULT_THRESHOLD = 1.0  # a spec states no pass threshold: every case must pass
_TOLERANCE = 1e-9  # pass rates are ratios of small counts: 2/3 must meet a threshold of 2/3


@dataclass(frozen=True)
class CaseRun:
    """One test case on one model, with what its model call cost and how long it took."""

    result: CaseResult
    cost_usd: float
    latency_s: float


@dataclass(frozen=True)
class ModelScore:
    model: str
    runs: tuple[CaseRun, ...]

    @property
    def cases(self) -> int:
        return len(self.runs)

    @property
    def passed(self) -> int:
        return sum(run.result.passed for run in self.runs)

    @property
    def errors(self) -> int:
        """Cases whose call raised (contract violation, provider error): no output at all."""
        return sum(bool(run.result.error) for run in self.runs)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.runs else 0.0

    @property
    def mean_cost_usd(self) -> float:
        return sum(run.cost_usd for run in self.runs) / self.cases if self.runs else 0.0

    @property
    def cost_per_1000_usd(self) -> float:
        return 1000 * self.mean_cost_usd

    @property
    def p50_latency_s(self) -> float:
        return percentile([run.latency_s for run in self.runs], 50)

    @property
    def p95_latency_s(self) -> float:
        return percentile([run.latency_s for run in self.runs], 95)


@dataclass(frozen=True)
class Skipped:
    model: str
    reason: str


@dataclass(frozen=True)
class Advice:
    scores: tuple[ModelScore, ...]
    skipped: tuple[Skipped, ...]
    threshold: float
    frontier: frozenset[str]  # cost, pass rate and latency
    cost_quality_frontier: frozenset[str]  # cost and pass rate only (the plot's line)
    recommended: ModelScore | None


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between the closest ranks; 0.0 for no values."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def candidate_models(
    client: Client, compiled: CompiledPrompt, requested: Sequence[str] | None = None
) -> tuple[list[str], list[Skipped]]:
    """The models to try, in order, and those skipped with the reason.

    `requested` names models explicitly (an unknown name raises ModelNotFound); by default,
    every configured model."""
    names = list(requested) if requested else [info.name for info in client.models()]
    accepted: list[str] = []
    skipped: list[Skipped] = []
    for name in dict.fromkeys(names):  # once each, in the order given
        client.settings.model(name)  # raises ModelNotFound naming the configured ones
        reason = _refusal(client, compiled, name)
        if reason is None:
            accepted.append(name)
        else:
            skipped.append(Skipped(name, reason))
    return accepted, skipped


def _refusal(client: Client, compiled: CompiledPrompt, model: str) -> str | None:
    try:
        if not client.provider(model).capabilities.supports_chat:
            return "not a chat model (embeddings only)"
        if compiled.contract is None:
            return None
        report = client.preflight(compiled.contract, model)
    except TetherError as exc:  # e.g. a remote model without its API key
        return exc.message
    if report.ok:
        return None
    refused = "; ".join(f"{p.keyword} at {p.pointer or '/'}: {p.reason}" for p in report.problems)
    return f"pre-flight refuses the output contract: {refused}"


def score_model(
    client: Client,
    compiled: CompiledPrompt,
    services: Services,
    model: str,
    *,
    folder: Path | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
    warm_up: bool = True,
) -> ModelScore:
    """Every case on `model`. `warm_up`: first one untimed, uncounted call with the first case's
    inputs, so that no case is timed with a model's one-time start (a local model pages its
    weights in on the first call; a remote one opens its connection)."""
    if warm_up and compiled.spec.tests:
        with suppress(TetherError):  # the cases meet the same error and report it
            client.run_compiled(compiled, compiled.spec.tests[0].inputs, model=model)
    runs: list[CaseRun] = []

    def note(result: CaseResult) -> None:
        runs.append(CaseRun(result, result.cost_usd, result.call_s))
        if on_case is not None:
            on_case(result)

    run_tests(client, compiled, services, model=model, folder=folder, on_case=note)
    return ModelScore(model, tuple(runs))


def pareto_frontier(scores: Iterable[ModelScore], *, latency: bool = True) -> frozenset[str]:
    """Models no other model beats: pass rate up, mean cost down (and p50 latency down)."""

    def key(score: ModelScore) -> tuple[float, ...]:
        # every axis as "lower is better"
        axes = (-score.pass_rate, score.mean_cost_usd)
        return (*axes, score.p50_latency_s) if latency else axes

    listed = list(scores)
    points = {s.model: key(s) for s in listed}

    def dominated(mine: tuple[float, ...]) -> bool:
        return any(
            other != mine and all(o <= m for o, m in zip(other, mine, strict=True))
            for other in points.values()
        )

    return frozenset(s.model for s in listed if not dominated(points[s.model]))


def meets(score: ModelScore, threshold: float) -> bool:
    return bool(score.runs) and score.pass_rate + _TOLERANCE >= threshold


def recommend(scores: Iterable[ModelScore], threshold: float) -> ModelScore | None:
    """The cheapest model whose pass rate meets `threshold`; None when none does."""
    meeting = [s for s in scores if meets(s, threshold)]
    if not meeting:
        return None
    return min(meeting, key=lambda s: (s.mean_cost_usd, -s.pass_rate, s.p50_latency_s))


def advise(scores: Sequence[ModelScore], skipped: Sequence[Skipped], threshold: float) -> Advice:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold {threshold} is not a pass rate between 0 and 1")
    return Advice(
        scores=tuple(scores),
        skipped=tuple(skipped),
        threshold=threshold,
        frontier=pareto_frontier(scores),
        cost_quality_frontier=pareto_frontier(scores, latency=False),
        recommended=recommend(scores, threshold),
    )
