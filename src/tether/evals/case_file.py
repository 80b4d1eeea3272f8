"""Test cases from a JSONL file, for prompts whose spec holds too few (or none).

One JSON object per line:

    {"inputs": {"comment": "Cold soup, rude waiter."}, "expected": {"sentiment": "negative"}}
    {"name": "praise", "inputs": {"comment": "Lovely!"}, "expected": {"sentiment": "positive"}}

- `inputs` (required): the prompt's input variables; they must meet its inputs schema.
- `expected` (required): for an object, each key is a field of the output (a dotted path such
  as `address.city`) that must equal its value; other fields are not checked. Anything else
  (a string, a number, a list) must equal the whole output.
- `name` (optional): the case's name in reports; default `line N`.

Blank lines are skipped. Every error names the file, the line and the field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tether.errors import ConfigError
from tether.evals.assertions import Equals
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.spec import TestCase

_FIX = 'one JSON object per line: {"inputs": {...}, "expected": ..., "name": "optional"}'
_KEYS = frozenset({"inputs", "expected", "name"})


def _bad(path: Path, where: str, message: str, fix: str = _FIX) -> ConfigError:
    return ConfigError(message, file=str(path), field=where, fix=fix)


def _expectations(expected: Any) -> list[Equals]:
    if isinstance(expected, dict) and expected:
        return [Equals(type="equals", field=key, value=value) for key, value in expected.items()]
    return [Equals(type="equals", value=expected)]


def _case(record: Any, path: Path, line: int, compiled: CompiledPrompt) -> TestCase:
    where = f"line {line}"
    if not isinstance(record, dict):
        raise _bad(path, where, "not a JSON object")
    unknown = sorted(set(record) - _KEYS)
    if unknown:
        raise _bad(path, where, f"unknown key(s) {', '.join(unknown)}")
    for key in ("inputs", "expected"):
        if key not in record:
            raise _bad(path, where, f"missing {key!r}")
    inputs, name = record["inputs"], record.get("name", where)
    if not isinstance(inputs, dict):
        raise _bad(path, f"{where}.inputs", "not an object of input variables")
    if not isinstance(name, str) or not name.strip():
        raise _bad(path, f"{where}.name", "not a non-empty string")
    problems = compiled.inputs.errors(inputs)
    if problems:
        raise _bad(
            path,
            f"{where}.inputs",
            "does not meet the prompt's inputs schema: " + "; ".join(problems),
            fix=f"give the input variables {compiled.spec.name} declares",
        )
    if record["expected"] == {}:
        raise _bad(path, f"{where}.expected", "an empty object checks nothing")
    checks = _expectations(record["expected"])
    return TestCase.model_validate({"name": name, "inputs": inputs, "assert": checks})


def read_cases(path: Path, compiled: CompiledPrompt) -> list[TestCase]:
    """The file's cases, checked against the prompt's inputs schema."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(path, "", f"cannot read the dataset: {exc}", fix="check the path") from None
    cases: list[TestCase] = []
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _bad(path, f"line {line}", f"not JSON: {exc.msg}") from None
        cases.append(_case(record, path, line, compiled))
    if not cases:
        raise _bad(path, "", "no cases in the file")
    return cases


def with_cases(compiled: CompiledPrompt, cases: list[TestCase]) -> CompiledPrompt:
    """The same prompt with `cases` as its tests (the spec's own are left out)."""
    spec = compiled.spec.model_copy(update={"tests": cases})
    return CompiledPrompt(spec, compiled.contract, compiled.inputs, compiled.templates)
