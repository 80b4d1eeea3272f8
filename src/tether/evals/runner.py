"""Run a prompt's test cases against a model and collect every assertion's outcome."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

from tether.client import Client
from tether.errors import ContractViolation, TetherError
from tether.evals.assertions import Outcome, Services, Subject, describe, evaluate
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.spec import TestCase
from tether.result import Attempt


@dataclass(frozen=True)
class AssertionResult:
    label: str
    outcome: Outcome


@dataclass(frozen=True)
class CaseResult:
    prompt: str
    version: str
    case: str
    model: str
    output: Any
    raw: str
    error: str
    latency_s: float
    assertions: tuple[AssertionResult, ...]
    # What the model call cost (every attempt, failed ones too) and how long it took alone
    # (latency_s includes the assertions, a judge's calls among them).
    cost_usd: float = 0.0
    call_s: float = 0.0

    @property
    def passed(self) -> bool:
        return all(a.outcome.passed for a in self.assertions)


@contextmanager
def _importable(folder: Path | None) -> Iterator[None]:
    """Let `python` assertions import check modules that sit beside the spec file."""
    if folder is None:
        yield
        return
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def run_case(
    client: Client,
    compiled: CompiledPrompt,
    case: TestCase,
    services: Services,
    *,
    model: str | None = None,
    folder: Path | None = None,
) -> CaseResult:
    started = perf_counter()
    output: Any = None
    raw = error = ""
    valid = False
    used = model or compiled.spec.model or client.settings.default_model
    attempts: tuple[Attempt, ...] = ()
    try:
        result = client.run_compiled(compiled, case.inputs, model=model)
        output, raw, valid, used = result.output, result.raw, True, result.model
        attempts = result.attempts
        if hasattr(output, "model_dump"):
            output = output.model_dump(mode="json")
    except ContractViolation as violation:
        raw, error, attempts = violation.last_raw, violation.message, violation.attempts
    except TetherError as exc:
        error, attempts = exc.message, exc.attempts
    call_s = perf_counter() - started
    subject = Subject(
        output=output, valid=valid, error=error, inputs=case.inputs, check_folder=folder
    )
    asserts = case.asserts or []
    outcomes = tuple(AssertionResult(describe(a), evaluate(a, subject, services)) for a in asserts)
    if not outcomes:  # a case without assertions still requires a valid output
        outcomes = (AssertionResult("schema_valid", Outcome(valid, error)),)
    return CaseResult(
        prompt=compiled.spec.name,
        version=compiled.spec.version,
        case=case.name,
        model=used,
        output=output,
        raw=raw,
        error=error,
        latency_s=perf_counter() - started,
        assertions=outcomes,
        cost_usd=sum(a.cost_usd for a in attempts),
        call_s=call_s,
    )


def run_tests(
    client: Client,
    compiled: CompiledPrompt,
    services: Services,
    *,
    model: str | None = None,
    folder: Path | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    results = []
    with _importable(folder):
        for case in compiled.spec.tests:
            result = run_case(client, compiled, case, services, model=model, folder=folder)
            results.append(result)
            if on_case is not None:
                on_case(result)
    return results
