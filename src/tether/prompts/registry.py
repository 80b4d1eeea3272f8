"""The prompt registry: immutable versions, labels that point at them, and a record of every
label move. Backed by SQLAlchemy (SQLite by default, PostgreSQL by URL).

Label moves and rollbacks of one label run one at a time on both databases (store/locks.py),
so every recorded event's `from_version` is the version the label really had."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from tether.errors import (
    IncompatibleChange,
    NothingToRollBack,
    PromptNotFound,
    VersionConflict,
)
from tether.evals.assertions import STORED_SPEC
from tether.prompts.compat import CompatReport, compare
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.semver import Bump, SemVer
from tether.prompts.spec import PromptSpec
from tether.settings import DEFAULT_PROMPT_MODEL_MODULES
from tether.store.locks import SerialWriter
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
        spec=PromptSpec.model_validate(json.loads(row.spec), context=STORED_SPEC),
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


def _label_key(name: str, label: str) -> str:
    return json.dumps(["label", name, label])  # unambiguous whatever the names hold


def _move(
    conn: Connection, name: str, label: str, version: str, *, kind: str, actor: str, reason: str
) -> LabelEvent:
    """Point the label at `version` and record the event; the caller holds the label's lock,
    so the version read here is the one the label really has."""
    now = datetime.now(UTC)
    where = (prompt_labels.c.name == name, prompt_labels.c.label == label)
    # FOR UPDATE also guards against a writer that does not take the label's lock.
    current = conn.execute(select(prompt_labels.c.version).where(*where).with_for_update()).scalar()
    if current is None:
        conn.execute(
            insert(prompt_labels).values(name=name, label=label, version=version, updated_at=now)
        )
    else:
        conn.execute(update(prompt_labels).where(*where).values(version=version, updated_at=now))
    event = LabelEvent(name, label, current, version, kind, actor, reason, now)
    conn.execute(insert(label_events).values(**asdict(event)))
    return event


class Registry:
    def __init__(
        self, engine: Engine, *, model_modules: Sequence[str] = DEFAULT_PROMPT_MODEL_MODULES
    ) -> None:
        self.engine = engine
        self._model_modules = tuple(model_modules)  # where output.model may be imported from
        self._writer = SerialWriter(engine)
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
            report = compare(previous.spec, spec, model_modules=self._model_modules)
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
            compiled = CompiledPrompt.compile(found.spec, model_modules=self._model_modules)
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
        self, name: str, label: str, version: str, *, actor: str, reason: str
    ) -> LabelEvent:
        """Point `label` at `version` and record the move (a move to the version the label
        already has is recorded too: it is a step in the label's history)."""
        if self._find(name, version) is None:
            raise PromptNotFound(name, version=version)
        with self._writer.transaction(_label_key(name, label)) as conn:
            return _move(conn, name, label, version, kind="move", actor=actor, reason=reason)

    def rollback(self, name: str, label: str, *, actor: str, reason: str) -> LabelEvent:
        """Move `label` one step back along its own history.

        The history is a stack of the versions the label was moved to: each move pushes its
        version, each rollback pops the top one and points the label at the version below it,
        so N rollbacks in a row retrace the last N moves (1.0.0 → 1.0.1 → 1.0.2, then two
        rollbacks: 1.0.1, then 1.0.0). A rollback never lands on the version the label
        already has: when the step below is that same version (the latest move re-applied
        it) or there is no step below, nothing is recorded and NothingToRollBack is raised.
        The history is read and the label moved in one transaction that no other label
        change overlaps, so concurrent rollbacks take consecutive steps.
        """
        with self._writer.transaction(_label_key(name, label)) as conn:
            rows = conn.execute(
                select(label_events.c.kind, label_events.c.to_version)
                .where(label_events.c.name == name, label_events.c.label == label)
                .order_by(label_events.c.id)
            )
            steps: list[str] = []
            for kind, to_version in rows:
                if kind != "rollback":
                    steps.append(to_version)
                elif steps:  # always, in a history written under the label's lock
                    steps.pop()
            current = steps[-1] if steps else None
            if len(steps) < 2:
                raise NothingToRollBack(
                    name, label, current=current, reason="it has no earlier version"
                )
            if steps[-2] == current:
                raise NothingToRollBack(
                    name,
                    label,
                    current=current,
                    reason=f"it was already at {current} before its latest move",
                )
            return _move(conn, name, label, steps[-2], kind="rollback", actor=actor, reason=reason)

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
