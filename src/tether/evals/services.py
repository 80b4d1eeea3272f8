"""Embeddings and a judge model for assertions, backed by a tether Client."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any, Literal

from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, Field

from tether.client import Client
from tether.errors import TetherError
from tether.evals.assertions import Judge, Outcome

DEFAULT_JUDGE_PROMPT = """You are grading the output of another model.
Criteria: {{ criteria }}
Inputs: {{ inputs }}
Output: {{ output }}
Does the output meet the criteria? First give your reasons, one short sentence each, then
your verdict: pass or fail."""


class Verdict(BaseModel):
    """The judge's answer. `reasons` comes first so that the model writes them before it
    commits to a verdict (outputs follow the schema's field order), not to justify one."""

    reasons: list[str] = Field(min_length=1)
    verdict: Literal["pass", "fail"]


class ClientServices:
    """`judge_model`, when given (`tether test --judge-model`), grades every judge assertion
    in place of the model each one names."""

    def __init__(self, client: Client, *, judge_model: str | None = None) -> None:
        self._client = client
        self._judge_model = judge_model
        self._embedders: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._env = ImmutableSandboxedEnvironment(autoescape=False)

    def similarity(self, embedder: str, a: str, b: str) -> float:
        from tether.cache.embedders.base import cosine
        from tether.cache.embedders.registry import create_embedder

        with self._lock:
            model = self._embedders.get(embedder)
            if model is None:
                model = self._embedders[embedder] = create_embedder(embedder)
        vectors = model.embed([a, b])
        return float(cosine(vectors[0], vectors[1]))

    def judge(self, assertion: Judge, output: Any, inputs: Mapping[str, Any]) -> Outcome:
        model = self._judge_model or assertion.model
        if not model:  # only a version stored before the judge needed a model
            return Outcome(False, "judge has no model: pass --judge-model or push a new version")
        template = self._env.from_string(assertion.prompt or DEFAULT_JUDGE_PROMPT)
        prompt = template.render(
            criteria=assertion.criteria,
            output=output if isinstance(output, str) else json.dumps(output, ensure_ascii=False),
            inputs=json.dumps(dict(inputs), ensure_ascii=False),
        )
        try:
            result = self._client.generate(prompt, contract=Verdict, model=model)
        except TetherError as exc:
            return Outcome(False, f"judge failed: {exc.message}")
        reasons = "; ".join(result.output.reasons)
        return Outcome(result.output.verdict == "pass", f"judge: {reasons}")
