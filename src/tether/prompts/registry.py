"""The prompt registry: immutable versions, labels that point at them, and a record of every
label move. Backed by SQLAlchemy (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from tether.errors import IncompatibleChange, PromptNotFound, VersionConflict
from tether.prompts.compat import CompatReport, compare
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.semver import Bump, SemVer
from tether.prompts.spec import PromptSpec
from tether.store.tables import label_events, prompt_labels, prompt_versions


@dataclass(frozen=True)
class PromptVersion:
    name: str
    version: str
    content_hash: str
    spec: PromptSpec
    source: str
    author: str
    message: str
    created_at: datetime


@dataclass(frozen=True)
class PushOutcome:
    version: PromptVersion
    created: bool  # False when this exact content was already registered under this version
    previous: str | None
    report: CompatReport | None


@dataclass(frozen=True)
class LabelEvent:
    name: str
    label: str
    from_version: str | None
    to_version: str
    kind: str
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class PromptSummary:
    name: str
    latest: str
    versions: int
    labels: dict[str, str]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def _version(row: Row[Any]) -> PromptVersion:
    return PromptVersion(
        name=row.name,
        version=row.version,
        content_hash=row.content_hash,
        spec=PromptSpec.model_validate(json.loads(row.spec)),
        source=row.source,
        author=row.author,
        message=row.message,
        created_at=_utc(row.created_at),
    )


def _event(row: Row[Any]) -> LabelEvent:
    return LabelEvent(
        name=row.name,
        label=row.label,
        from_version=row.from_version,
        to_version=row.to_version,
        kind=row.kind,
        actor=row.actor,
        reason=row.reason,
        at=_utc(row.at),
    )


class Registry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._compiled: dict[tuple[str, str], CompiledPrompt] = {}
        self._lock = threading.Lock()

    # -- versions -----------------------------------------------------------------------------

    def push(self, spec: PromptSpec, *, source: str, author: str, message: str) -> PushOutcome:
        """Register `spec` as an immutable version, after checking its semantic version."""
        content_hash = spec.content_hash()
        existing = self._find(spec.name, spec.version)
        if existing is not None:
            return self._same_or_conflict(existing, content_hash)
        previous = self._predecessor(spec.name, spec.semver)
        report = None
        if previous is not None:
            report = compare(previous.spec, spec)
            actual = spec.semver.bump_over(previous.spec.semver)
            if actual < report.needed:
                raise IncompatibleChange(
                    spec.name,
                    spec.version,
                    needed=report.needed.name.lower(),
                    previous=previous.version,
                    reasons=report.reasons(at_least=Bump(actual + 1)),
                )
        semver = spec.semver
        row = {
            "name": spec.name,
            "version": spec.version,
            "major": semver.major,
            "minor": semver.minor,
            "patch": semver.patch,
            "content_hash": content_hash,
            "spec": json.dumps(spec.canonical(), ensure_ascii=False),
            "source": source,
            "author": author,
            "message": message,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(prompt_versions).values(**row))
        except IntegrityError:
            # A concurrent push of the same version won the race.
            found = self._find(spec.name, spec.version)
            if found is None:
                raise
            return self._same_or_conflict(found, content_hash)
        created = self._find(spec.name, spec.version)
        assert created is not None
        return PushOutcome(created, True, previous.version if previous else None, report)

    def get(
        self, name: str, *, version: str | None = None, label: str | None = None
    ) -> PromptVersion:
        """A version by number, by label, or the highest version."""
        if version is None and label is not None:
            version = self.labels(name).get(label)
            if version is None:
                raise PromptNotFound(name, label=label)
        if version is not None:
            found = self._find(name, version)
            if found is None:
                raise PromptNotFound(name, version=version)
            return found
        versions = self.versions(name)
        if not versions:
            raise PromptNotFound(name)
        return versions[-1]

    def compiled(self, found: PromptVersion) -> CompiledPrompt:
        key = (found.name, found.version)
        with self._lock:
            compiled = self._compiled.get(key)
        if compiled is None:
            compiled = CompiledPrompt.compile(found.spec)
            with self._lock:
                self._compiled[key] = compiled
        return compiled

    def versions(self, name: str) -> list[PromptVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(prompt_versions).where(prompt_versions.c.name == name))
            found = [_version(r) for r in rows]
        return sorted(found, key=lambda v: v.spec.semver)

    def summaries(self) -> list[PromptSummary]:
        with self.engine.connect() as conn:
            versions = conn.execute(select(prompt_versions.c.name, prompt_versions.c.version)).all()
            labels = conn.execute(select(prompt_labels)).all()
        by_name: dict[str, list[SemVer]] = {}
        for name, version in versions:
            by_name.setdefault(name, []).append(SemVer.parse(version))
        return [
            PromptSummary(
                name=name,
                latest=str(max(found)),
                versions=len(found),
                labels={row.label: row.version for row in labels if row.name == name},
            )
            for name, found in sorted(by_name.items())
        ]

    # -- labels -------------------------------------------------------------------------------

    def labels(self, name: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(prompt_labels).where(prompt_labels.c.name == name))
            return {row.label: row.version for row in rows}

    def set_label(
        self, name: str, label: str, version: str, *, actor: str, reason: str, kind: str = "move"
    ) -> LabelEvent:
        if self._find(name, version) is None:
            raise PromptNotFound(name, version=version)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            current = conn.execute(
                select(prompt_labels.c.version)
                .where(prompt_labels.c.name == name, prompt_labels.c.label == label)
                .with_for_update()
            ).scalar()
            if current is None:
                conn.execute(
                    insert(prompt_labels).values(
                        name=name, label=label, version=version, updated_at=now
                    )
                )
            else:
                conn.execute(
                    update(prompt_labels)
                    .where(prompt_labels.c.name == name, prompt_labels.c.label == label)
                    .values(version=version, updated_at=now)
                )
            event = LabelEvent(name, label, current, version, kind, actor, reason, now)
            conn.execute(insert(label_events).values(**asdict(event)))
        return event

    def rollback(self, name: str, label: str, *, actor: str, reason: str) -> LabelEvent:
        """Point `label` back at the version it had before its last move."""
        stack: list[str | None] = []
        for event in self.label_history(name, label):
            if event.kind == "rollback":
                if stack:
                    stack.pop()
            else:
                stack.append(event.from_version)
        target = stack[-1] if stack else None
        if target is None:
            raise PromptNotFound(name, label=f"{label} (no earlier version to roll back to)")
        return self.set_label(name, label, target, actor=actor, reason=reason, kind="rollback")

    def label_history(self, name: str, label: str | None = None) -> list[LabelEvent]:
        query = select(label_events).where(label_events.c.name == name)
        if label is not None:
            query = query.where(label_events.c.label == label)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(query.order_by(label_events.c.id))]

    # -- internals ----------------------------------------------------------------------------

    def _find(self, name: str, version: str) -> PromptVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(prompt_versions).where(
                    prompt_versions.c.name == name, prompt_versions.c.version == version
                )
            ).first()
        return _version(row) if row else None

    def _predecessor(self, name: str, semver: SemVer) -> PromptVersion | None:
        older = [v for v in self.versions(name) if v.spec.semver < semver]
        return older[-1] if older else None

    def _same_or_conflict(self, existing: PromptVersion, content_hash: str) -> PushOutcome:
        if existing.content_hash != content_hash:
            raise VersionConflict(existing.name, existing.version)
        return PushOutcome(existing, False, None, None)
