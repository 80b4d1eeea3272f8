"""Assertions a prompt test case makes about an output. Each kind is a Pydantic model (how it is
written in a spec file) and one check function, registered by its `type`."""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class _Assertion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str | None = Field(
        default=None, description="dotted path into the output (themes.0); none = whole output"
    )


class SchemaValid(_Assertion):
    type: Literal["schema_valid"]


class Equals(_Assertion):
    """Equal as JSON values: see `same`."""

    type: Literal["equals"]
    value: Any


class OneOf(_Assertion):
    """Equal (as `equals` compares) to one of `values`."""

    type: Literal["in"]
    values: list[Any] = Field(min_length=1)


class Contains(_Assertion):
    """On a string: `value` is a substring. On a list: an element equals `value` (by the rule
    of `equals`). On an object: `value` is one of its keys. `case_sensitive: false` folds the
    case of the string, of string elements, or of the keys."""

    type: Literal["contains"]
    value: Any
    case_sensitive: bool = True


class Matches(_Assertion):
    type: Literal["regex"]
    pattern: str


class InRange(_Assertion):
    type: Literal["range"]
    min: float | None = None
    max: float | None = None


# The lowest cosine (0.01 steps) at which MiniLM passes at most 2% of the STS-B pairs people
# scored clearly different (<= 2 of 5) and none of the short antonym pairs (positive/negative,
# yes/no, safe/unsafe ...); about 65% of paraphrases (>= 4 of 5) pass it. Measured over
# STS-B train + dev by benchmarks/similar_threshold.py (results/similar_threshold.md).
SIMILAR_THRESHOLD = 0.84


class Similar(_Assertion):
    """Cosine similarity of the embeddings of the output (as text) and `value`. Embeddings
    see topic, not polarity: a negated sentence scores close to the original, so check
    verdicts and labels with `equals`, `in` or `regex` instead."""

    type: Literal["similar"]
    value: str
    threshold: float = Field(default=SIMILAR_THRESHOLD, ge=-1, le=1)
    embedder: str = "minilm"


class PythonCheck(_Assertion):
    type: Literal["python"]
    function: str = Field(description="module:function, called with (value, inputs)")


# Validation context for a spec read back from the registry. Stored versions are immutable and
# must load whatever rules came after them; the rules below apply to spec files.
STORED_SPEC: dict[str, bool] = {"stored_spec": True}


class Judge(_Assertion):
    """An LLM grades the output against `criteria`, giving its reasons before its verdict."""

    type: Literal["judge"]
    criteria: str = Field(min_length=1)
    # Required, with no default model: a grade is only as good as the grader, and the smallest
    # local model is not one. Missing is checked below rather than by the type, so that the
    # error explains itself at the field's own location (and stored versions still load).
    model: str | None = Field(default=None, validate_default=True, description="grading model")
    prompt: str | None = Field(
        default=None,
        description="judge prompt template; sees {{ criteria }}, {{ output }} and {{ inputs }}",
    )

    @field_validator("model")
    @classmethod
    def _model_named(cls, model: str | None, info: ValidationInfo) -> str | None:
        stored = isinstance(info.context, Mapping) and info.context.get("stored_spec")
        if not stored and not (model and model.strip()):
            raise PydanticCustomError(
                "judge_model_missing",
                "a judge assertion needs `model`: the name of a configured model to grade "
                "with, one stronger than the model under test",
            )
        return model


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
    check_folder: Path | None = None  # where `python` checks may be loaded from: the spec's


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


def same(a: Any, b: Any) -> bool:
    """Equality of JSON values: a boolean is never a number (`true` is not `1`); an int and a
    float of equal value are the same number (JSON has one number type: `1` is `1.0`);
    strings, null, lists (in order) and objects (by key) compare by type and content, lists
    and objects element by element under this same rule."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _equals(a: Equals, s: Subject, value: Any, services: Services) -> Outcome:
    return _ok(same(value, a.value), f"{_text(value)} != {_text(a.value)}")


def _one_of(a: OneOf, s: Subject, value: Any, services: Services) -> Outcome:
    return _ok(any(same(value, v) for v in a.values), f"{_text(value)} not in {_text(a.values)}")


def _folded(value: Any, fold: bool) -> Any:
    return value.casefold() if fold and isinstance(value, str) else value


def _contains(a: Contains, s: Subject, value: Any, services: Services) -> Outcome:
    fold = not a.case_sensitive
    needle = _folded(a.value, fold)
    if isinstance(value, str):
        if not isinstance(needle, str):
            return Outcome(False, f"cannot look for {_text(a.value)} in a string")
        return _ok(needle in _folded(value, fold), f"{a.value!r} is not in the string")
    if isinstance(value, list):
        found = any(same(_folded(item, fold), needle) for item in value)
        return _ok(found, f"no element equals {_text(a.value)}")
    if isinstance(value, Mapping):
        found = any(_folded(key, fold) == needle for key in value)
        return _ok(found, f"no key {_text(a.value)}")
    return Outcome(False, f"{_text(value)} is not a string, list or object")


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
    module = _check_module(module_name, s.check_folder)
    if isinstance(module, Outcome):
        return module
    check: Callable[[Any, Mapping[str, Any]], object] | None = getattr(module, attr, None)
    if not callable(check):
        return Outcome(False, f"{module_name} has no function {attr!r}")
    try:
        result = check(value, s.inputs)
    except AssertionError as exc:
        return Outcome(False, str(exc) or f"{a.function} failed")
    return _ok(result is not False, f"{a.function} returned False")


def _check_module(name: str, folder: Path | None) -> ModuleType | Outcome:
    """The module `name` from the spec file's own folder, and from nowhere else: a spec must
    not be able to call `os:system` (or any installed module) with the model's output."""
    if folder is None or not name.isidentifier():
        return Outcome(False, f"python checks load a module beside the spec file, not {name!r}")
    module = _load_beside(name, str(folder))
    if module is None:
        return Outcome(False, f"no module {name!r} beside the spec file in {folder}")
    return module


@functools.lru_cache(maxsize=64)
def _load_beside(name: str, folder: str) -> ModuleType | None:
    """Executed once per folder and name, not once per assertion."""
    found = importlib.machinery.PathFinder.find_spec(name, [folder])
    if found is None or found.loader is None:
        return None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


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
