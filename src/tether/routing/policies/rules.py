"""`rules`: ordered rules; the first whose conditions all hold picks a model or answers outright.

A rule with `answer` is the deterministic tier: a greeting, a known question, a refusal is
answered without calling any model (RouteDecision.answer). A rule that cannot be decided (its
regex timed out, its function raised) is skipped, and the reason says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tether.routing.base import RouteDecision, RouteInput, RoutePolicy
from tether.routing.conditions import Condition, Skipped, conditions_of
from tether.routing.config import RuleSettings, RulesRouterSettings
from tether.routing.context import BuildContext


@dataclass(frozen=True)
class Rule:
    label: str
    conditions: tuple[Condition, ...]
    model: str | None
    answer: str | None

    def matches(self, request: RouteInput, text: str) -> list[str] | None:
        """What matched, per condition, or None as soon as one does not hold."""
        said: list[str] = []
        for condition in self.conditions:
            found = condition.check(request, text)
            if found is None:
                return None
            said.append(found)
        return said


class RuleSet:
    """Rules in order; used by the rules policy and ahead of the learned one."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)

    @classmethod
    def from_settings(
        cls, rules: Sequence[RuleSettings], context: BuildContext, *, field: str = "rules"
    ) -> RuleSet:
        built = []
        for index, rule in enumerate(rules):
            where = context.field(field, index)
            label = f"rule {index + 1}" + (f" {rule.name!r}" if rule.name else "")
            conditions = conditions_of(rule, context.allowed_modules, field=where)
            built.append(Rule(label, tuple(conditions), rule.model, rule.answer))
        return cls(built)

    def decide(self, request: RouteInput, policy: str) -> tuple[RouteDecision | None, list[str]]:
        """The first matching rule's decision (None when none matches) and notes on skipped
        rules, for the reason of whatever decides instead."""
        text = request.text
        notes: list[str] = []
        for rule in self.rules:
            try:
                said = rule.matches(request, text)
            except Skipped as exc:
                notes.append(f"{rule.label} skipped: {exc}")
                continue
            if said is None:
                continue
            why = f"{rule.label} ({', '.join(said)})"
            if rule.answer is not None:
                reason = f"{why}: answered without a model"
                return RouteDecision(None, _with(reason, notes), policy, answer=rule.answer), notes
            return RouteDecision(rule.model, _with(f"{why}: {rule.model}", notes), policy), notes
        return None, notes


def _with(reason: str, notes: list[str]) -> str:
    return "; ".join([reason, *notes])


class RulesPolicy(RoutePolicy):
    kind = "rules"

    def __init__(self, rules: RuleSet, default: str) -> None:
        self.rules = rules
        self.default = default

    @classmethod
    def from_settings(cls, config: RulesRouterSettings, context: BuildContext) -> RulesPolicy:
        return cls(RuleSet.from_settings(config.rules, context), config.default)

    def decide(self, request: RouteInput) -> RouteDecision:
        decided, notes = self.rules.decide(request, self.kind)
        if decided is not None:
            return decided
        reason = _with(f"no rule matched: default {self.default}", notes)
        return RouteDecision(self.default, reason, self.kind)
