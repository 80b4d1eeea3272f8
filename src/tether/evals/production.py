"""Evaluators on production traffic: a prompt's checks, configured in the settings, run on a
sample of its logged requests.

    [[evaluations]]
    prompt = "ticket"
    sample = 0.1
    asserts = [{ type = "in", field = "queue", values = ["billing", "tech"] },
               { type = "groundedness", field = "summary" }]

The assertions are the prompt tests' kinds (a `judge` grades through the client with the model
it names) plus `groundedness`. The sample is decided by request id, so reruns pick the same
requests; a request is evaluated once. Requests that failed a check are queued for review,
with a sample of the rest.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import Engine

from tether.errors import TetherError
from tether.evals.assertions import (
    Contains,
    Equals,
    InRange,
    Judge,
    Matches,
    OneOf,
    Outcome,
    PythonCheck,
    SchemaValid,
    Services,
    Similar,
    Subject,
    describe,
    evaluate,
    select,
)
from tether.evals.groundedness import Groundedness, bundled_embedder, context_of, groundedness
from tether.store.evaluations import EvaluationRow, LoggedRequest, add_evaluations, unevaluated
from tether.store.reviews import FAILED_PREFIX, enqueue

if TYPE_CHECKING:
    from tether.client import Client
    from tether.settings import Settings

ProductionAssertion = Annotated[
    SchemaValid
    | Equals
    | OneOf
    | Contains
    | Matches
    | InRange
    | Similar
    | PythonCheck
    | Judge
    | Groundedness,
    Field(discriminator="type"),
]

DEFAULT_LIMIT = 1000  # requests evaluated per prompt per run


class EvaluationSettings(BaseModel):
    """One `[[evaluations]]` entry: the checks run on a sample of a prompt's logged requests."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    prompt: str = Field(min_length=1, description="the registered prompt's name")
    sample: float = Field(default=0.1, ge=0, le=1, description="share of requests evaluated")
    review_sample: float = Field(
        default=0.05, ge=0, le=1, description="share of passing requests queued for review"
    )
    asserts: list[ProductionAssertion] = Field(min_length=1)


_EVALUATIONS = TypeAdapter(list[EvaluationSettings])


def evaluations_of(settings: Settings) -> list[EvaluationSettings]:
    """The settings' `[[evaluations]]` entries ([] when there are none)."""
    found: Any = getattr(settings, "evaluations", None) or []
    return _EVALUATIONS.validate_python(found)


def in_sample(request_id: str, rate: float, *, salt: str = "evaluate") -> bool:
    """Whether a request is in a `rate` sample: decided by its id, so reruns agree; `salt`
    makes the review sample independent of the evaluation sample."""
    if rate >= 1.0:
        return True
    return zlib.crc32(f"{salt}:{request_id}".encode()) % 10_000 < rate * 10_000


@dataclass(frozen=True)
class RequestEvaluation:
    request: LoggedRequest
    rows: list[EvaluationRow]

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.rows)


@dataclass
class PromptSummary:
    prompt: str
    evaluated: int = 0
    passed: int = 0
    queued: int = 0
    by_evaluator: dict[str, list[int]] = field(default_factory=dict)  # name -> [passed, total]

    @property
    def failed(self) -> int:
        return self.evaluated - self.passed


def _subject(request: LoggedRequest) -> Subject:
    valid = request.valid is not False and request.status < 400
    error = request.error or ("output did not meet the contract" if not valid else "")
    return Subject(output=request.output, valid=valid, error=error, inputs={})


def _grounded(check: Groundedness, request: LoggedRequest) -> tuple[float | None, Outcome]:
    answer = select(request.output, check.field)
    if not isinstance(answer, str):
        where = f"field {check.field!r}" if check.field else "the output"
        return None, Outcome(False, f"{where} is not text to check for groundedness")
    context = context_of(check.context, request.messages, {})
    if context is None:
        return None, Outcome(
            False,
            f"context {check.context!r}: input variables are not in the request log; "
            "use context = 'messages', 'system' or 'user'",
        )
    report = groundedness(answer, context, embedder=bundled_embedder(),
                          threshold=check.threshold, overlap=check.overlap)  # fmt: skip
    return report.score, Outcome(report.score >= check.min_score, report.reason())


def evaluator_name(check: ProductionAssertion) -> str:
    if isinstance(check, Groundedness):
        return f"groundedness {check.field}" if check.field else "groundedness"
    return describe(check)


def evaluate_request(
    request: LoggedRequest, checks: Sequence[ProductionAssertion], services: Services
) -> RequestEvaluation:
    now = datetime.now(UTC)
    subject = _subject(request)
    rows = []
    for check in checks:
        score: float | None = None
        if isinstance(check, Groundedness):
            score, outcome = _grounded(check, request)
        else:
            outcome = evaluate(check, subject, services)
        detail = outcome.detail or "passed"
        rows.append(EvaluationRow(request.id, evaluator_name(check), score, outcome.passed,
                                  detail, now))  # fmt: skip
    return RequestEvaluation(request, rows)


def evaluate_logged(
    engine: Engine,
    client: Client,
    evaluations: Sequence[EvaluationSettings] | Settings,
    *,
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
    prompt: str | None = None,
    services: Services | None = None,
    on_request: Callable[[RequestEvaluation], None] | None = None,
) -> list[PromptSummary]:
    """Evaluate the sampled, not yet evaluated requests of each configured prompt (only
    `prompt` when given), store the rows and queue failures and a sample for review.
    `evaluations`: the entries, or settings holding them."""
    if not isinstance(evaluations, Sequence):
        evaluations = evaluations_of(evaluations)
    chosen = [e for e in evaluations if prompt is None or e.prompt == prompt]
    if prompt is not None and not chosen:
        raise TetherError(
            f"no [[evaluations]] entry for prompt {prompt!r} in the settings",
            fix=f'add [[evaluations]] with prompt = "{prompt}" and its asserts to tether.toml',
        )
    if services is None:
        from tether.evals.services import ClientServices

        services = ClientServices(client)
    summaries = []
    for entry in chosen:
        summary = PromptSummary(entry.prompt)
        sampled = partial(in_sample, rate=entry.sample)
        found = unevaluated(engine, entry.prompt, since=since, limit=limit, chosen=sampled)
        for request in found:
            result = evaluate_request(request, entry.asserts, services)
            add_evaluations(engine, result.rows)
            summary.queued += _queue(engine, result, entry.review_sample)
            _count(summary, result)
            if on_request is not None:
                on_request(result)
        summaries.append(summary)
    return summaries


def _queue(engine: Engine, result: RequestEvaluation, rate: float) -> int:
    failed = [r.evaluator for r in result.rows if r.passed is False]
    if failed:
        return enqueue(engine, [(result.request.id, f"{FAILED_PREFIX}: {', '.join(failed)}")])
    if in_sample(result.request.id, rate, salt="review"):
        return enqueue(engine, [(result.request.id, "sampled")])
    return 0


def _count(summary: PromptSummary, result: RequestEvaluation) -> None:
    summary.evaluated += 1
    summary.passed += result.passed
    for row in result.rows:
        tally = summary.by_evaluator.setdefault(row.evaluator, [0, 0])
        tally[0] += row.passed is not False
        tally[1] += 1
