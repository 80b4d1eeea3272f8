"""Assertions a prompt test case makes about an output. Each kind is a Pydantic model (how it is
written in a spec file) and one check function, registered by its `type`."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field


class _Assertion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str | None = Field(
        default=None, description="dotted path into the output (themes.0); none = whole output"
    )


class SchemaValid(_Assertion):
    type: Literal["schema_valid"]


class Equals(_Assertion):
    type: Literal["equals"]
    value: Any


class OneOf(_Assertion):
    type: Literal["in"]
    values: list[Any] = Field(min_length=1)


class Contains(_Assertion):
    type: Literal["contains"]
    value: str
    case_sensitive: bool = True


class Matches(_Assertion):
    type: Literal["regex"]
    pattern: str


class InRange(_Assertion):
    type: Literal["range"]
    min: float | None = None
    max: float | None = None


class Similar(_Assertion):
    type: Literal["similar"]
    value: str
    threshold: float = Field(default=0.7, ge=-1, le=1)
    embedder: str = "minilm"


class PythonCheck(_Assertion):
    type: Literal["python"]
    function: str = Field(description="module:function, called with (value, inputs)")


class Judge(_Assertion):
    type: Literal["judge"]
    criteria: str = Field(min_length=1)
    model: str | None = None
    prompt: str | None = Field(
        default=None,
        description="judge prompt template; sees {{ criteria }}, {{ output }} and {{ inputs }}",
    )


Assertion = Annotated[
    SchemaValid | Equals | OneOf | Contains | Matches | InRange | Similar | PythonCheck | Judge,
    Field(discriminator="type"),
]


@dataclass(frozen=True)
class Outcome:
    passed: bool
    detail: str


class Services(Protocol):
    """What some assertions need from outside: embeddings and a judge model."""

    def similarity(self, embedder: str, a: str, b: str) -> float: ...

    def judge(self, assertion: Judge, output: Any, inputs: Mapping[str, Any]) -> Outcome: ...


@dataclass(frozen=True)
class Subject:
    output: Any  # the validated output (None when the call failed)
    valid: bool  # whether it met the contract
    error: str  # why not, when it did not
    inputs: Mapping[str, Any]


_MISSING = object()


def select(value: Any, path: str | None) -> Any:
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif (
            isinstance(value, list)
            and part.lstrip("-").isdigit()
            and -len(value) <= int(part) < len(value)
        ):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _ok(passed: bool, detail: str) -> Outcome:
    return Outcome(passed, "" if passed else detail)


def _schema_valid(a: SchemaValid, s: Subject, value: Any, services: Services) -> Outcome:
    return _ok(s.valid, s.error or "output did not meet the contract")


def _equals(a: Equals, s: Subject, value: Any, services: Services) -> Outcome:
    return _ok(value == a.value, f"{_text(value)} != {_text(a.value)}")


def _one_of(a: OneOf, s: Subject, value: Any, services: Services) -> Outcome:
    return _ok(value in a.values, f"{_text(value)} not in {_text(a.values)}")


def _contains(a: Contains, s: Subject, value: Any, services: Services) -> Outcome:
    text, needle = _text(value), a.value
    if not a.case_sensitive:
        text, needle = text.casefold(), needle.casefold()
    return _ok(needle in text, f"{a.value!r} not found")


def _matches(a: Matches, s: Subject, value: Any, services: Services) -> Outcome:
    return _ok(re.search(a.pattern, _text(value)) is not None, f"no match for /{a.pattern}/")


def _in_range(a: InRange, s: Subject, value: Any, services: Services) -> Outcome:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return Outcome(False, f"{_text(value)} is not a number")
    low = a.min if a.min is not None else float("-inf")
    high = a.max if a.max is not None else float("inf")
    return _ok(low <= value <= high, f"{value} outside [{a.min}, {a.max}]")


def _similar(a: Similar, s: Subject, value: Any, services: Services) -> Outcome:
    score = services.similarity(a.embedder, _text(value), a.value)
    return Outcome(score >= a.threshold, f"similarity {score:.3f} (threshold {a.threshold})")


def _python(a: PythonCheck, s: Subject, value: Any, services: Services) -> Outcome:
    module_name, _, attr = a.function.partition(":")
    check: Callable[[Any, Mapping[str, Any]], object] = getattr(
        importlib.import_module(module_name), attr
    )
    try:
        result = check(value, s.inputs)
    except AssertionError as exc:
        return Outcome(False, str(exc) or f"{a.function} failed")
    return _ok(result is not False, f"{a.function} returned False")


def _judge(a: Judge, s: Subject, value: Any, services: Services) -> Outcome:
    return services.judge(a, value, s.inputs)


_CHECKS: dict[type[BaseModel], Callable[[Any, Subject, Any, Services], Outcome]] = {
    SchemaValid: _schema_valid,
    Equals: _equals,
    OneOf: _one_of,
    Contains: _contains,
    Matches: _matches,
    InRange: _in_range,
    Similar: _similar,
    PythonCheck: _python,
    Judge: _judge,
}


def evaluate(assertion: _Assertion, subject: Subject, services: Services) -> Outcome:
    if not subject.valid and not isinstance(assertion, SchemaValid):
        return Outcome(False, f"no valid output: {subject.error}")
    value = select(subject.output, assertion.field)
    if value is _MISSING:
        return Outcome(False, f"field {assertion.field!r} not in the output")
    return _CHECKS[type(assertion)](assertion, subject, value, services)


def describe(assertion: _Assertion) -> str:
    """A short label for reports: `equals sentiment`, `regex`, ..."""
    kind = assertion.model_dump()["type"]
    return f"{kind} {assertion.field}" if assertion.field else str(kind)
