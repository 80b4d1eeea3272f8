"""`tether prompts tokens` on the bundled local model equals the prompt tokens llama.cpp reports
for the real call: every example spec version, every test input, few-shot and zero-shot."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tether import Client
from tether.messages import ProviderCall
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.loader import load_spec
from tether.prompts.tokens import token_report

pytestmark = pytest.mark.local_model

EXAMPLE = Path(__file__).resolve().parents[2] / "prompts" / "feedback-sentiment"
CASES = [
    (spec_file.name, case.name)
    for spec_file in sorted(EXAMPLE.glob("*.yaml"))
    for case in load_spec(spec_file).compiled.spec.tests
]


def _consumed(client: Client, compiled: CompiledPrompt, inputs: dict[str, Any]) -> int:
    """Prompt tokens llama.cpp is given for the real call (one token generated)."""
    plan = client.compiled_plan(compiled, inputs)
    call = ProviderCall(plan.messages, replace(plan.params, max_tokens=1), plan.output)
    return plan.provider.complete(call).usage.input_tokens


@pytest.mark.parametrize(("spec_file", "case_name"), CASES)
def test_report_equals_the_tokens_the_call_consumes(
    local_client: Client, spec_file: str, case_name: str
) -> None:
    compiled = load_spec(EXAMPLE / spec_file).compiled
    inputs = next(c.inputs for c in compiled.spec.tests if c.name == case_name)
    report = token_report(compiled, local_client.compiled_plan(compiled, inputs), inputs)
    assert report.exact
    assert all(p.exact for p in report.parts)
    assert report.input_tokens == _consumed(local_client, compiled, inputs)


def test_zero_shot_structured_call_counts_the_schema_instruction(local_client: Client) -> None:
    """Without examples the local model gets tether's schema instruction: it is in the count."""
    spec = load_spec(EXAMPLE / "1.1.0.yaml").compiled.spec
    compiled = CompiledPrompt.compile(spec.model_copy(update={"examples": []}))
    inputs = {"comment": "The soup was cold."}
    report = token_report(compiled, local_client.compiled_plan(compiled, inputs), inputs)
    parts = {p.name: p.tokens for p in report.parts}
    assert parts["schema instruction"] > 50
    assert report.input_tokens == _consumed(local_client, compiled, inputs)
    assert report.input_tokens > parts["schema instruction"] + parts["variable comment"]
