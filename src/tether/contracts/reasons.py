"""Why one schema may allow a value another refuses: the Reason a containment check gives, and
the comparisons of the keywords that bound a value rather than hold subschemas (numeric ranges,
multipleOf, lengths and counts, pattern, format)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeGuard

from tether.contracts.guard import pointer

Path = tuple[str | int, ...]

_MAX_SHOWN_VALUES = 5
_NOT_COMPARED = "not compared, so the change counts as breaking"


@dataclass(frozen=True)
class Reason:
    """Why `inner` may allow a value `outer` refuses: `inner` and `outer` say what each schema
    does at `pointer` (a JSON Pointer into `inner`), to be read as "<inner> ..., <outer> ...".
    `proven` is False when containment could not be shown rather than shown false."""

    pointer: str
    keyword: str
    inner: str
    outer: str
    proven: bool = True

    def explain(self, inner_name: str, outer_name: str) -> str:
        return (
            f"{self.keyword} at {self.pointer or '/'}: "
            f"{inner_name} {self.inner}, {outer_name} {self.outer}"
        )


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lower(node: Mapping[str, Any]) -> tuple[float, bool] | None:
    """The lower bound as (value, exclusive); the tighter one when both keywords are set."""
    minimum, exclusive = node.get("minimum"), node.get("exclusiveMinimum")
    if isinstance(exclusive, bool):  # draft 4
        return (minimum, exclusive) if _number(minimum) else None
    found = [(v, e) for v, e in ((minimum, False), (exclusive, True)) if _number(v)]
    return max(found) if found else None


def _upper(node: Mapping[str, Any]) -> tuple[float, bool] | None:
    maximum, exclusive = node.get("maximum"), node.get("exclusiveMaximum")
    if isinstance(exclusive, bool):
        return (maximum, exclusive) if _number(maximum) else None
    found = [(v, e) for v, e in ((maximum, False), (exclusive, True)) if _number(v)]
    return min(found, key=lambda b: (b[0], not b[1])) if found else None


def numeric_reasons(
    i: Mapping[str, Any], at: str, o: Mapping[str, Any], kept: set[str]
) -> list[Reason]:
    reasons = []
    for name, bound, beyond in (("minimum", _lower, -1), ("maximum", _upper, 1)):
        outer, inner = bound(o), bound(i)
        if outer is None:
            continue
        if inner is None:
            side = "lower" if beyond < 0 else "upper"
            reasons.append(Reason(at, name, f"has no {side} bound", f"only {_edge(outer, beyond)}"))
            continue
        tighter = (inner[0] - outer[0]) * -beyond > 0 or (
            inner[0] == outer[0] and (inner[1] or not outer[1])
        )
        if not tighter:
            reasons.append(
                Reason(
                    at,
                    name,
                    f"allows values {_edge(inner, beyond)}",
                    f"only {_edge(outer, beyond)}",
                )
            )
    step = o.get("multipleOf")
    if _number(step) and step > 0 and not _divides(step, i.get("multipleOf"), kept):
        reasons.append(
            Reason(
                at,
                "multipleOf",
                f"allows values that are not multiples of {step}",
                "does not",
                proven=False,
            )
        )
    return reasons


def _edge(bound: tuple[float, bool], beyond: int) -> str:
    """ "from 0", "above 0", "up to 1", "below 1"."""
    value, exclusive = bound
    if beyond < 0:
        return f"{'above' if exclusive else 'from'} {value}"
    return f"{'below' if exclusive else 'up to'} {value}"


def _divides(step: float, inner: Any, kept: set[str]) -> bool:
    outer_step = Fraction(str(step))
    if _number(inner) and inner > 0 and (Fraction(str(inner)) / outer_step).denominator == 1:
        return True
    return kept == {"integer"} and (1 / outer_step).denominator == 1


def string_reasons(i: Mapping[str, Any], at: str, o: Mapping[str, Any]) -> list[Reason]:
    reasons = count_reasons(i, at, o, "minLength", "maxLength", "characters")
    if "pattern" in o and i.get("pattern") != o["pattern"]:
        has = f"has pattern {i['pattern']!r}" if "pattern" in i else "has no pattern"
        reasons.append(
            Reason(
                at,
                "pattern",
                has,
                f"requires {o['pattern']!r} (different patterns are not "
                "compared, so the change counts as breaking)",
                proven=False,
            )
        )
    if "format" in o and i.get("format") != o["format"]:
        has = f"has format {i['format']!r}" if "format" in i else "has no format"
        reasons.append(Reason(at, "format", has, f"requires {o['format']!r}", proven=False))
    return reasons


def count_reasons(
    i: Mapping[str, Any], at: str, o: Mapping[str, Any], low: str, high: str, unit: str
) -> list[Reason]:
    reasons = []
    for keyword, sign in ((low, -1), (high, 1)):
        outer, inner = o.get(keyword), i.get(keyword)
        if not isinstance(outer, int) or isinstance(outer, bool):
            continue
        if not isinstance(inner, int) or isinstance(inner, bool):
            reasons.append(Reason(at, keyword, f"has no {keyword}", f"has {keyword} {outer}"))
        elif (inner - outer) * sign > 0:
            word = "fewer" if sign < 0 else "more"
            reasons.append(
                Reason(
                    at,
                    keyword,
                    f"allows {word} {unit} ({keyword} {inner})",
                    f"has {keyword} {outer}",
                )
            )
    return reasons


def shown_values(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_SHOWN_VALUES])
    more = len(values) - _MAX_SHOWN_VALUES
    return shown + (f" and {more} more" if more > 0 else "")


def not_compared(path: Path, keyword: str, inner: str) -> Reason:
    return Reason(pointer(path), keyword, inner, f"has {keyword!r} ({_NOT_COMPARED})", False)


def unproven(reason: Reason) -> Reason:
    return Reason(reason.pointer, reason.keyword, reason.inner, reason.outer, proven=False)
