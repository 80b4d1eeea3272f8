"""Which version bump a change between two prompt versions needs, and why.

Compatibility has a direction, and it is decided by schema containment
(`tether.contracts.containment`), not by a list of keywords:

- Output contract (what downstream code relies on): breaking when the new version can produce an
  output the old contract did not allow. Minor only when every output valid under the new schema
  is valid under the old one: an enum narrowed, a constraint tightened, a field made required, a
  new optional field where extra fields were allowed. An enum widened, a constraint relaxed, a
  field dropped or no longer required is major.
- Inputs (what callers send): breaking when the new version refuses an input the old one
  accepted. Minor only when every input valid under the old schema stays valid: an enum widened,
  a constraint relaxed, a new optional input. A new required input, an enum or a type narrowed is
  major.
- When containment cannot be shown (different patterns, keywords not compared), the change
  counts as breaking, and the reason says so.
- A schema change that keeps containment is minor; a patch when only titles, descriptions and
  the like changed. Templates, examples, parameters, model, description and tests: patch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tether.contracts.containment import contained
from tether.contracts.edits import schema_edits
from tether.prompts.compiled import import_model
from tether.prompts.semver import Bump
from tether.prompts.spec import PromptSpec
from tether.settings import DEFAULT_PROMPT_MODEL_MODULES


@dataclass(frozen=True)
class Change:
    bump: Bump
    what: str


@dataclass(frozen=True)
class CompatReport:
    changes: tuple[Change, ...]
    edits: tuple[str, ...] = ()  # what changed in the output and inputs schemas, for people

    @property
    def needed(self) -> Bump:
        return max((c.bump for c in self.changes), default=Bump.NONE)

    def reasons(self, at_least: Bump) -> list[str]:
        return [c.what for c in self.changes if c.bump >= at_least]


@dataclass(frozen=True)
class _Direction:
    """How one schema of a prompt may change: which side must contain the other, and how to
    say what a breaking change does to whom."""

    label: str
    new_is_inner: bool
    inner_name: str
    outer_name: str
    breaks: str
    keeps: str


_OUTPUT = _Direction(
    "output",
    new_is_inner=True,
    inner_name="the new contract",
    outer_name="the old one",
    breaks="consumers can receive a value the old contract did not allow",
    keeps="every output the new contract allows, the old one allowed too",
)
_INPUTS = _Direction(
    "inputs",
    new_is_inner=False,
    inner_name="the old inputs schema",
    outer_name="the new one",
    breaks="callers' inputs that the old version accepted are refused",
    keeps="every input the old version accepted is still accepted",
)
_UNPROVEN = "compatibility cannot be shown, so this counts as breaking"


def compare(
    old: PromptSpec,
    new: PromptSpec,
    *,
    model_modules: Sequence[str] = DEFAULT_PROMPT_MODEL_MODULES,
) -> CompatReport:
    changes: list[Change] = []
    edits: list[str] = []
    old_out = _output_schema(old, model_modules)
    new_out = _output_schema(new, model_modules)
    if old_out != new_out:
        if old_out is None or new_out is None:
            changes.append(Change(Bump.MAJOR, "output contract added or removed"))
        else:
            changes += _schema_changes(_OUTPUT, old_out, new_out)
            edits += [f"output: {e}" for e in schema_edits(old_out, new_out)]
    if old.inputs != new.inputs:
        changes += _schema_changes(_INPUTS, old.inputs, new.inputs)
        edits += [f"inputs: {e}" for e in schema_edits(old.inputs, new.inputs)]
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
    return CompatReport(tuple(changes), tuple(edits))


def _output_schema(spec: PromptSpec, model_modules: Sequence[str]) -> dict[str, Any] | None:
    if spec.output is None:
        return None
    if spec.output.schema_ is not None:
        return spec.output.schema_
    return import_model(spec.output.model or "", model_modules).model_json_schema()


def _schema_changes(way: _Direction, old: Any, new: Any) -> list[Change]:
    inner, outer = (new, old) if way.new_is_inner else (old, new)
    result = contained(inner, outer)
    if not result.holds:
        return [
            Change(
                Bump.MAJOR,
                f"{way.label}: {r.explain(way.inner_name, way.outer_name)}: "
                + (way.breaks if r.proven else _UNPROVEN),
            )
            for r in result.reasons
        ]
    edits = schema_edits(old, new)
    if all(e.documentation for e in edits):
        return [Change(Bump.PATCH, f"{way.label}: {e}") for e in edits]
    return [
        Change(Bump.MINOR, f"{way.label}: {e}: {way.keeps}") for e in edits if not e.documentation
    ]
