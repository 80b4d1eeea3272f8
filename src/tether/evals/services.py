"""Embeddings and a judge model for assertions, backed by a tether Client."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any, Literal

from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel

from tether.client import Client
from tether.errors import TetherError
from tether.evals.assertions import Judge, Outcome

DEFAULT_JUDGE_PROMPT = """You are grading the output of another model.
Criteria: {{ criteria }}
Inputs: {{ inputs }}
Output: {{ output }}
Does the output meet the criteria? Answer with a verdict (pass or fail) and a short reason."""


class Verdict(BaseModel):
    verdict: Literal["pass", "fail"]
    reason: str


class ClientServices:
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
        template = self._env.from_string(assertion.prompt or DEFAULT_JUDGE_PROMPT)
        prompt = template.render(
            criteria=assertion.criteria,
            output=output if isinstance(output, str) else json.dumps(output, ensure_ascii=False),
            inputs=json.dumps(dict(inputs), ensure_ascii=False),
        )
        try:
            result = self._client.generate(
                prompt, contract=Verdict, model=assertion.model or self._judge_model
            )
        except TetherError as exc:
            return Outcome(False, f"judge failed: {exc.message}")
        return Outcome(result.output.verdict == "pass", f"judge: {result.output.reason}")
