"""What changed between two versions of a schema, keyword by keyword, for people to read.

This lists edits; whether an edit breaks anyone is decided by containment
(`tether.contracts.containment`), not here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tether.contracts.guard import MAX_SCHEMA_DEPTH, pointer

# Keywords that say something about a value without constraining it.
DOCUMENTATION = frozenset(
    {"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
     "writeOnly"}
)  # fmt: skip
_VALUES = frozenset({"enum", "const", "default", "examples", "required"})
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class Edit:
    pointer: str  # of the schema object holding the keyword
    what: str
    documentation: bool  # only titles, descriptions and the like

    def __str__(self) -> str:
        return f"{self.what} at {self.pointer or '/'}"


def schema_edits(old: Any, new: Any) -> list[Edit]:
    """Every keyword added, removed or changed from `old` to `new`, in document order."""
    found: list[Edit] = []
    stack: list[tuple[Any, Any, tuple[str | int, ...]]] = [(old, new, ())]
    while stack:
        before, after, path = stack.pop()
        if len(path) > 2 * MAX_SCHEMA_DEPTH:
            found.append(Edit(pointer(path), "deeper parts changed", False))
            continue
        if not isinstance(before, Mapping) or not isinstance(after, Mapping):
            if before != after:
                found.append(Edit(pointer(path), f"{_shown(before)} → {_shown(after)}", False))
            continue
        nested: list[tuple[Any, Any, tuple[str | int, ...]]] = []
        for key in [*before, *(k for k in after if k not in before)]:
            if before.get(key) == after.get(key):
                continue
            if key in before and key in after and key not in _VALUES:
                if key in ("properties", "$defs", "definitions", "patternProperties"):
                    found += _members(key, before[key], after[key], after, path)
                    nested += _shared(key, before[key], after[key], path)
                    continue
                if isinstance(before[key], Mapping) and isinstance(after[key], Mapping):
                    nested.append((before[key], after[key], (*path, key)))
                    continue
                if _schema_list(before[key], after[key]):
                    nested += [
                        (b, a, (*path, key, n))
                        for n, (b, a) in enumerate(zip(before[key], after[key], strict=True))
                    ]
                    continue
            found.append(_keyword_edit(key, before, after, path))
        stack.extend(reversed(nested))
    return found


def _members(
    key: str, before: Any, after: Any, holder: Mapping[str, Any], path: tuple[str | int, ...]
) -> Iterator[Edit]:
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        yield Edit(pointer(path), f"{key} replaced", False)
        return
    required = holder.get("required", [])
    for name in [n for n in after if n not in before]:
        if key == "properties":
            kind = "required" if name in required else "optional"
            yield Edit(pointer((*path, key, name)), f"new {kind} field {name!r}", False)
        else:
            yield Edit(pointer((*path, key, name)), f"{key} entry added", False)
    for name in [n for n in before if n not in after]:
        what = f"field {name!r} removed" if key == "properties" else f"{key} entry removed"
        yield Edit(pointer((*path, key, name)), what, False)


def _shared(
    key: str, before: Any, after: Any, path: tuple[str | int, ...]
) -> list[tuple[Any, Any, tuple[str | int, ...]]]:
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return []
    return [(before[n], after[n], (*path, key, n)) for n in before if n in after]


def _schema_list(before: Any, after: Any) -> bool:
    return (
        isinstance(before, list)
        and isinstance(after, list)
        and len(before) == len(after)
        and all(isinstance(x, Mapping) for x in (*before, *after))
    )


def _keyword_edit(
    key: str, before: Mapping[str, Any], after: Mapping[str, Any], path: tuple[str | int, ...]
) -> Edit:
    documentation = key in DOCUMENTATION
    if key not in after:
        return Edit(pointer(path), f"{key} removed", documentation)
    if key not in before:
        return Edit(pointer(path), f"{key} {_shown(after[key])} added", documentation)
    old, new = before[key], after[key]
    if key in ("enum", "required") and isinstance(old, list) and isinstance(new, list):
        gained = [v for v in new if v not in old]
        lost = [v for v in old if v not in new]
        parts = [f"gains {_shown_all(gained)}"] * bool(gained)
        parts += [f"loses {_shown_all(lost)}"] * bool(lost)
        return Edit(pointer(path), f"{key} {' and '.join(parts) or 'reordered'}", documentation)
    return Edit(pointer(path), f"{key} {_shown(old)} → {_shown(new)}", documentation)


def _shown_all(values: list[Any]) -> str:
    return ", ".join(_shown(v) for v in values)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
