"""Pre-flight: before any call, tell which schema keywords the chosen provider enforces while
generating, which are only validated after, and which it cannot honour at all, for the exact
request that will be sent.

A provider whose capabilities name a schema profile (hosted APIs, OpenAI-compatible servers)
is judged by the plan the profile makes: strict off, JSON mode or a keyword moved into a
description means "validated after". A grammar-constrained provider is judged by its grammar
compiler, less what the compiler's lenient mode relaxed. Any other provider by its declared
`SchemaSupport`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tether.contracts.keywords import keyword_uses
from tether.errors import SchemaProblem, UnsupportedSchema
from tether.providers.base import Provider
from tether.providers.schema_profiles import WirePlan, profile_for, wire_plan

_AFTER_GENERATION = "validation after generation"


class Enforcement(StrEnum):
    DECODING = "enforced during decoding"
    VALIDATED = "validated after"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class KeywordSupport:
    keyword: str
    pointers: tuple[str, ...]
    enforcement: Enforcement


@dataclass(frozen=True)
class PreflightReport:
    provider: str
    model: str
    enforcement: str
    keywords: tuple[KeywordSupport, ...]
    problems: tuple[SchemaProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            raise UnsupportedSchema(
                provider=self.provider, model=self.model, problems=self.problems
            )


def preflight(
    schema: Mapping[str, Any], provider: Provider, *, strict: bool | None = None
) -> PreflightReport:
    """Judge the enforcement `schema` (`Contract.enforcement_schema`) against `provider`;
    `strict` is whether it is strict-shaped as it stands (computed when not given)."""
    where: dict[str, list[str]] = defaultdict(list)
    for keyword, at in keyword_uses(dict(schema)):
        where[keyword].append(at)
    caps = provider.capabilities
    if profile_for(caps) is not None:
        from tether.contracts.contract import strict_shaped  # contract imports this module

        plan = wire_plan(schema, strict_shaped(schema) if strict is None else strict, caps)
        problems = [*plan.problems, *provider.schema_problems(schema)]
        decoded = _decoded(plan)
        describe = caps.enforcement if plan.mode == "json_schema" and decoded else _AFTER_GENERATION
    else:
        problems, decoded = _declared(schema, provider, where)
        describe = caps.enforcement
    refused = {p.keyword for p in problems}
    rows = tuple(
        KeywordSupport(
            keyword,
            tuple(pointers),
            Enforcement.UNSUPPORTED
            if keyword in refused
            else Enforcement.DECODING
            if keyword in decoded
            else Enforcement.VALIDATED,
        )
        for keyword, pointers in sorted(where.items())
    )
    return PreflightReport(
        provider=provider.kind,
        model=provider.model,
        enforcement=describe,
        keywords=rows,
        problems=tuple(problems),
    )


def _decoded(plan: WirePlan) -> frozenset[str]:
    """Keywords enforced everywhere they appear, for the request the plan describes."""
    if plan.mode != "json_schema" and not plan.decoded:
        return frozenset()
    if plan.problems:
        return frozenset()
    # A keyword moved into a description anywhere is reported by its weakest use.
    return plan.decoded - {keyword for keyword, _ in plan.moved}


def _declared(
    schema: Mapping[str, Any], provider: Provider, where: Mapping[str, list[str]]
) -> tuple[list[SchemaProblem], frozenset[str]]:
    """Problems and enforced keywords for a provider judged by its own declarations."""
    caps = provider.capabilities
    support = caps.schema
    problems: list[SchemaProblem] = [
        SchemaProblem(k, where[k][0], reason)
        for k, reason in support.unsupported.items()
        if k in where
    ]
    if support.root_must_be_object and schema.get("type") != "object":
        problems.append(
            SchemaProblem(
                "type",
                "",
                "the root must be an object here; wrap the value in an object property",
            )
        )
    if not problems:
        problems.extend(provider.schema_problems(schema))
    enforced = support.enforced
    if caps.supports_grammar and not problems:
        from tether.providers.grammar import lenient_drops  # only grammar providers load it

        enforced = enforced - lenient_drops(schema)
    return problems, enforced
