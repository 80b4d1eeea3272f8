"""Which version bump a change between two prompt versions needs, and why.

Output contract (what consumers of the output rely on):
- major: a field removed or renamed, a type changed, an enum narrowed, a field made required or
  no longer required, a new required field, any constraint tightened;
- minor: a new optional field, an enum widened, a type widened, a constraint relaxed.
Inputs: a new required input variable is major (callers must change); others minor.
Templates, examples, parameters, model: patch (or more). Description and tests only: patch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema_rs

from tether.prompts.semver import Bump
from tether.prompts.spec import PromptSpec

# Keywords handled structurally below; the rest are compared by set containment.
_STRUCTURAL = frozenset({"type", "properties", "required", "enum", "items", "title", "description"})


@dataclass(frozen=True)
class Change:
    bump: Bump
    what: str


@dataclass(frozen=True)
class CompatReport:
    changes: tuple[Change, ...]

    @property
    def needed(self) -> Bump:
        return max((c.bump for c in self.changes), default=Bump.NONE)

    def reasons(self, at_least: Bump) -> list[str]:
        return [c.what for c in self.changes if c.bump >= at_least]


def compare(old: PromptSpec, new: PromptSpec) -> CompatReport:
    changes: list[Change] = []
    old_out = _output_schema(old)
    new_out = _output_schema(new)
    if old_out != new_out:
        if old_out is None or new_out is None:
            changes.append(Change(Bump.MAJOR, "output contract added or removed"))
        else:
            changes += _schema_changes(old_out, new_out, "output")
    if old.inputs != new.inputs:
        changes += _input_changes(old.inputs, new.inputs)
    for field, label in (
        ("messages", "templates"),
        ("examples", "few-shot examples"),
        ("params", "parameters"),
        ("model", "model"),
    ):
        if getattr(old, field) != getattr(new, field):
            changes.append(Change(Bump.PATCH, f"{label} changed"))
    if old.description != new.description or old.tests != new.tests:
        changes.append(Change(Bump.PATCH, "description or tests changed"))
    return CompatReport(tuple(changes))


def _output_schema(spec: PromptSpec) -> dict[str, Any] | None:
    if spec.output is None:
        return None
    if spec.output.schema_ is not None:
        return spec.output.schema_
    from tether.prompts.compiled import import_model

    return import_model(spec.output.model or "").model_json_schema()


def _types(schema: dict[str, Any]) -> set[str] | None:
    declared = schema.get("type")
    if declared is None:
        return None  # any type
    return {declared} if isinstance(declared, str) else set(declared)


def _schema_changes(old: Any, new: Any, at: str) -> list[Change]:
    if not isinstance(old, dict) or not isinstance(new, dict) or old == new:
        return [] if old == new else [Change(Bump.MAJOR, f"{at}: schema replaced")]
    changes: list[Change] = []
    old_types, new_types = _types(old), _types(new)
    if old_types != new_types:
        if new_types is None or (old_types is not None and old_types < new_types):
            changes.append(Change(Bump.MINOR, f"{at}: type widened"))
        else:
            changes.append(
                Change(
                    Bump.MAJOR,
                    f"{at}: type changed {sorted(old_types or ['any'])} → {sorted(new_types)}",
                )
            )
    changes += _enum_changes(old, new, at)
    changes += _property_changes(old, new, at)
    if "items" in old or "items" in new:
        changes += _schema_changes(old.get("items", {}), new.get("items", {}), f"{at}[]")
    changes += _constraint_changes(old, new, at)
    return changes


def _enum_changes(old: dict[str, Any], new: dict[str, Any], at: str) -> list[Change]:
    before, after = old.get("enum"), new.get("enum")
    if before == after:
        return []
    if before is None:
        return [Change(Bump.MAJOR, f"{at}: values restricted to {after}")]
    if after is None:
        return [Change(Bump.MINOR, f"{at}: enum removed (any value)")]
    removed = [v for v in before if v not in after]
    added = [v for v in after if v not in before]
    out = []
    if removed:
        out.append(Change(Bump.MAJOR, f"{at}: enum narrowed, {removed} removed"))
    if added:
        out.append(Change(Bump.MINOR, f"{at}: enum widened, {added} added"))
    return out


def _property_changes(old: dict[str, Any], new: dict[str, Any], at: str) -> list[Change]:
    before: dict[str, Any] = old.get("properties", {})
    after: dict[str, Any] = new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    changes: list[Change] = []
    removed = [name for name in before if name not in after]
    added = [name for name in after if name not in before]
    for name in removed:
        twin = next((a for a in added if after[a] == before[name]), None)
        if twin is not None:
            added.remove(twin)
            changes.append(Change(Bump.MAJOR, f"{at}.{name}: renamed to {twin}"))
        else:
            changes.append(Change(Bump.MAJOR, f"{at}.{name}: field removed"))
    for name in added:
        if name in new_required:
            changes.append(Change(Bump.MAJOR, f"{at}.{name}: new required field"))
        else:
            changes.append(Change(Bump.MINOR, f"{at}.{name}: new optional field"))
    for name in before.keys() & after.keys():
        if name in new_required and name not in old_required:
            changes.append(Change(Bump.MAJOR, f"{at}.{name}: made required"))
        elif name in old_required and name not in new_required:
            changes.append(Change(Bump.MAJOR, f"{at}.{name}: no longer required"))
        changes += _schema_changes(before[name], after[name], f"{at}.{name}")
    return changes


def _constraint_changes(old: dict[str, Any], new: dict[str, Any], at: str) -> list[Change]:
    rest_old = {k: v for k, v in old.items() if k not in _STRUCTURAL}
    rest_new = {k: v for k, v in new.items() if k not in _STRUCTURAL}
    if rest_old == rest_new:
        return []
    keywords = sorted(
        k for k in rest_old.keys() | rest_new.keys() if rest_old.get(k) != rest_new.get(k)
    )
    try:
        relaxed = jsonschema_rs.canonicalize(rest_new).covers(jsonschema_rs.canonicalize(rest_old))
        compatible = relaxed == jsonschema_rs.canonical.Containment.YES
    except (ValueError, jsonschema_rs.canonical.CanonicalizationError):
        compatible = False  # cannot prove it: assume consumers may break
    if compatible:
        return [Change(Bump.MINOR, f"{at}: {', '.join(keywords)} relaxed")]
    return [Change(Bump.MAJOR, f"{at}: {', '.join(keywords)} tightened or changed")]


def _input_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    before = set(old.get("required", []))
    added = sorted(set(new.get("required", [])) - before)
    if added:
        return [Change(Bump.MAJOR, f"inputs: callers must now pass {', '.join(added)}")]
    return [Change(Bump.MINOR, "inputs schema changed")]
