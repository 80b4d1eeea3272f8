"""A readiness dataset: JSONL cases in the form `tether models recommend --dataset` reads
(`{"inputs": {...}, "expected": ...}`, see tether.evals.case_file), or with the assertions a
spec's test case makes: `{"name": "optional", "inputs": {...}, "assert": [{"type": ...}]}`.
One form per file; every error names the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tether.errors import ConfigError
from tether.evals.case_file import read_cases
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.spec import TestCase

_FIX = 'one JSON object per line: {"inputs": {...}, "assert": [{"type": "equals", ...}]}'


def read_dataset(path: Path, compiled: CompiledPrompt) -> list[TestCase]:
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the dataset: {exc}", file=str(path), field=None, fix="check the path"
        ) from None
    records: list[tuple[int, Any]] = []
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            try:
                records.append((number, json.loads(raw)))
            except json.JSONDecodeError as exc:
                raise _bad(path, f"line {number}", f"not JSON: {exc.msg}") from None
    asserting = [isinstance(rec, dict) and "assert" in rec for _, rec in records]
    if not any(asserting):
        return read_cases(path, compiled)  # the `expected` form, checked there
    if not all(asserting):
        first = records[asserting.index(False)][0]
        raise _bad(path, f"line {first}", "mixes `expected` and `assert` lines",
                   fix="use one form per file: give this line an `assert` list")  # fmt: skip
    return [_case(rec, path, number, compiled) for number, rec in records]


def _bad(path: Path, where: str, message: str, fix: str = _FIX) -> ConfigError:
    return ConfigError(message, file=str(path), field=where, fix=fix)


def _case(record: dict[str, Any], path: Path, number: int, compiled: CompiledPrompt) -> TestCase:
    where = f"line {number}"
    unknown = sorted(set(record) - {"name", "inputs", "assert"})
    if unknown:
        raise _bad(path, where, f"unknown key(s) {', '.join(unknown)}")
    inputs = record.get("inputs")
    if not isinstance(inputs, dict):
        raise _bad(path, f"{where}.inputs", "missing, or not an object of input variables")
    problems = compiled.inputs.errors(inputs)
    if problems:
        raise _bad(path, f"{where}.inputs",
                   "does not meet the prompt's inputs schema: " + "; ".join(problems),
                   fix=f"give the input variables {compiled.spec.name} declares")  # fmt: skip
    data = {"name": record.get("name", where), "inputs": inputs, "assert": record["assert"]}
    try:
        return TestCase.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join([where, *map(str, error["loc"])])
        raise _bad(path, field, error["msg"]) from None
