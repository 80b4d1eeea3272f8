"""Training rows from a prompt's test cases: each case run on the cheap and the premium model.

A case's text is what the route stage will read for it at run time: the user messages of the
rendered prompt (`RouteInput.text`). Pass or fail is the case's assertions, as `tether test`
judges them (tether.evals.runner).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tether.client import Client
from tether.evals.runner import CaseResult, run_tests
from tether.evals.services import ClientServices
from tether.prompts.loader import LoadedSpec
from tether.routing.base import RouteInput
from tether.routing.learned.dataset import Outcome, Outcomes, check_outcomes


def outcomes_from_tests(
    client: Client,
    loaded: LoadedSpec,
    *,
    cheap: str,
    premium: str,
    services: ClientServices | None = None,
    on_case: Callable[[CaseResult], None] | None = None,
) -> Outcomes:
    compiled = loaded.compiled
    services = services or ClientServices(client)
    folder = Path(loaded.path).parent
    runs = [
        run_tests(client, compiled, services, model=model, folder=folder, on_case=on_case)
        for model in (cheap, premium)
    ]
    rows = [
        Outcome(RouteInput(messages=compiled.render(case.inputs)).text, low.passed, high.passed)
        for case, low, high in zip(compiled.spec.tests, *runs, strict=True)
    ]
    return check_outcomes(Outcomes(tuple(rows)), loaded.path)
