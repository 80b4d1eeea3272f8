"""Pre-flight: before any call, tell which schema keywords the chosen provider enforces while
generating, which are only validated after, and which it cannot honour at all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tether.contracts.keywords import keyword_uses
from tether.errors import SchemaProblem, UnsupportedSchema
from tether.providers.base import Provider


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


def preflight(schema: Mapping[str, Any], provider: Provider) -> PreflightReport:
    caps = provider.capabilities
    support = caps.schema
    where: dict[str, list[str]] = defaultdict(list)
    for keyword, at in keyword_uses(dict(schema)):
        where[keyword].append(at)

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

    refused = {p.keyword for p in problems}
    rows = tuple(
        KeywordSupport(
            keyword,
            tuple(pointers),
            Enforcement.UNSUPPORTED
            if keyword in refused
            else Enforcement.DECODING
            if keyword in support.enforced
            else Enforcement.VALIDATED,
        )
        for keyword, pointers in sorted(where.items())
    )
    return PreflightReport(
        provider=provider.kind,
        model=provider.model,
        enforcement=caps.enforcement,
        keywords=rows,
        problems=tuple(problems),
    )
