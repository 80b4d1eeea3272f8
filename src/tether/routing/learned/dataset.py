"""Training rows for the learned router: a request's text and whether each model passed it.

A dataset file is JSONL (one object per line) or CSV (a header row), with the columns
`text`, `cheap_correct` and `premium_correct`; correctness is true/false, 1/0 or yes/no.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tether.errors import ConfigError

COLUMNS = ("text", "cheap_correct", "premium_correct")
_TRUE = frozenset({"true", "1", "yes", "pass", "passed"})
_FALSE = frozenset({"false", "0", "no", "fail", "failed"})


@dataclass(frozen=True)
class Outcome:
    text: str
    cheap_correct: bool
    premium_correct: bool


@dataclass(frozen=True)
class Outcomes:
    rows: tuple[Outcome, ...]

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.rows]

    @property
    def cheap(self) -> list[bool]:
        return [r.cheap_correct for r in self.rows]

    @property
    def premium(self) -> list[bool]:
        return [r.premium_correct for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, indexes: Iterable[int]) -> Outcomes:
        return Outcomes(tuple(self.rows[i] for i in indexes))


def _bad(path: Path, where: str, message: str) -> ConfigError:
    return ConfigError(
        message,
        file=str(path),
        field=where,
        fix=f"each row needs {', '.join(COLUMNS)}; correctness as true/false or 1/0",
    )


def _flag(value: object, path: Path, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(path, where, f"{value!r} is not true or false")


def _row(record: object, path: Path, line: int) -> Outcome:
    if not isinstance(record, dict):
        raise _bad(path, f"line {line}", "not an object")
    missing = [c for c in COLUMNS if c not in record or record[c] is None]
    if missing:
        raise _bad(path, f"line {line}", f"missing {', '.join(missing)}")
    text = record["text"]
    if not isinstance(text, str) or not text.strip():
        raise _bad(path, f"line {line}.text", "not a non-empty string")
    return Outcome(
        text,
        _flag(record["cheap_correct"], path, f"line {line}.cheap_correct"),
        _flag(record["premium_correct"], path, f"line {line}.premium_correct"),
    )


def read_outcomes(path: Path) -> Outcomes:
    """Rows of a .jsonl or .csv dataset; ConfigError naming the line and column otherwise."""
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the dataset: {exc}", file=str(path), field=None, fix="check the path"
        ) from None
    rows: list[Outcome] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(raw.splitlines())
        for line, record in enumerate(reader, start=2):
            rows.append(_row(record, path, line))
    elif path.suffix.lower() in {".jsonl", ".ndjson"}:
        for line, text in enumerate(raw.split("\n"), start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _bad(path, f"line {line}", f"not JSON: {exc.msg}") from None
            rows.append(_row(record, path, line))
    else:
        raise ConfigError(
            f"unknown dataset format {path.suffix!r}",
            file=str(path),
            field=None,
            fix="use a .jsonl or .csv file",
        )
    return check_outcomes(Outcomes(tuple(rows)), str(path))


def check_outcomes(outcomes: Outcomes, source: str) -> Outcomes:
    """Enough rows, and both classes of the cheap model's outcome, to learn anything."""
    cheap: Sequence[bool] = outcomes.cheap
    if len(outcomes) < 10:
        raise ConfigError(
            f"{len(outcomes)} rows; a router needs at least 10",
            file=source,
            field=None,
            fix="add rows (a few hundred give a usable router)",
        )
    if all(cheap) or not any(cheap):
        raise ConfigError(
            "the cheap model " + ("passed" if all(cheap) else "failed") + " every row: "
            "nothing to learn",
            file=source,
            field="cheap_correct",
            fix="add rows where the cheap model both passes and fails",
        )
    return outcomes
