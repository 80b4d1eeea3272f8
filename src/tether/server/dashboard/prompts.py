"""The prompts page's data: every prompt with its versions, its labels and each label's moves.

The rows come from `tether.store.prompt_history` (three queries, whatever the number of
prompts); this module groups them by prompt, newest version first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from tether.prompts.semver import SemVer
from tether.store.dialect import utc
from tether.store.prompt_history import prompt_history


@dataclass(frozen=True)
class VersionRow:
    version: str
    content_hash: str
    author: str
    message: str
    created_at: datetime
    labels: list[str]


@dataclass(frozen=True)
class LabelMove:
    at: datetime
    from_version: str | None
    to_version: str
    kind: str
    actor: str
    reason: str


@dataclass(frozen=True)
class LabelRow:
    label: str
    version: str
    updated_at: datetime
    moves: list[LabelMove]  # oldest first


@dataclass
class PromptRow:
    name: str
    versions: list[VersionRow] = field(default_factory=list)  # newest first
    labels: list[LabelRow] = field(default_factory=list)


def _order(version: str) -> tuple[int, SemVer | None, str]:
    try:
        return 1, SemVer.parse(version), version
    except ValueError:
        return 0, None, version


def list_prompts(engine: Engine) -> list[PromptRow]:
    stored = prompt_history(engine)
    versions, labels, events = stored.versions, stored.labels, stored.events
    moves: dict[tuple[str, str], list[LabelMove]] = {}
    for e in events:
        moves.setdefault((e.name, e.label), []).append(
            LabelMove(utc(e.at), e.from_version, e.to_version, e.kind, e.actor, e.reason)
        )
    pointing: dict[tuple[str, str], list[str]] = {}
    prompts: dict[str, PromptRow] = {}
    for row in sorted(labels, key=lambda r: (r.name, r.label)):
        pointing.setdefault((row.name, row.version), []).append(row.label)
        prompts.setdefault(row.name, PromptRow(row.name)).labels.append(
            LabelRow(
                row.label, row.version, utc(row.updated_at), moves.get((row.name, row.label), [])
            )
        )
    for v in sorted(versions, key=lambda r: _order(r.version), reverse=True):
        prompts.setdefault(v.name, PromptRow(v.name)).versions.append(
            VersionRow(
                version=v.version,
                content_hash=v.content_hash,
                author=v.author,
                message=v.message,
                created_at=utc(v.created_at),
                labels=pointing.get((v.name, v.version), []),
            )
        )
    return [prompts[name] for name in sorted(prompts)]
