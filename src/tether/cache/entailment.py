"""The optional entailment check: before a semantic hit is served, a model is asked whether
the cached request and the new one ask for the same answer.

It costs a call per would-be hit (charged to the request, like any attempt), so it is off
unless `[cache.semantic] entailment_model` names a model; a "no" vetoes the hit as
`entailment`. The answer is a contract like any other: `{"same": true|false}`, validated.
"""

from __future__ import annotations

from typing import Any

from tether.engine import run_async
from tether.messages import Message
from tether.pipeline.planning import Planner
from tether.result import Attempt

SAME = {
    "type": "object",
    "properties": {"same": {"type": "boolean"}},
    "required": ["same"],
    "additionalProperties": False,
}
INSTRUCTION = (
    "Two requests were sent to an assistant. Decide whether one answer would be correct for "
    "both: the same question, not merely the same topic. Differences in numbers, dates, "
    "names, negation or direction make them different. Reply with JSON: "
    '{"same": true} or {"same": false}.'
)


class EntailmentCheck:
    def __init__(self, model: str, planner: Planner) -> None:
        self._model = model
        self._planner = planner

    async def same(self, cached: str, query: str) -> tuple[bool, tuple[Attempt, ...]]:
        """Whether `cached`'s answer serves `query`, and the attempts that cost."""
        contract = self._planner.contract(SAME, name="cache_entailment")
        messages = (
            Message("system", INSTRUCTION),
            Message("user", f"Request A:\n{cached}\n\nRequest B:\n{query}"),
        )
        params: dict[str, Any] = {"max_tokens": 16, "temperature": 0.0}
        plan = self._planner.plan(self._model, messages, contract=contract, params=params)
        result = await run_async(plan)
        return bool(result.output["same"]), result.attempts
