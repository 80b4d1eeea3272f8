"""The conditions a routing rule can test, each one small object with a `check`.

A condition reads the user's text (`RouteInput.text`), the request's metadata, or asks a user
function. `check` returns what matched, for the decision's reason, or None.

Regular expressions run on the `regex` module with a timeout (REGEX_TIMEOUT_S): a pattern that
backtracks catastrophically on some input (`(a|aa)+$` on "aaaa…!") stops there, the rule counts as
not matching and the reason says so; a request is never held up by a rule. Refusing nested
quantifiers when the settings load would miss the other ways to write such a pattern
(overlapping alternatives under a star), so the timeout is the one guard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import regex

from tether.errors import ConfigError
from tether.routing.base import RouteInput
from tether.routing.config import RuleSettings
from tether.routing.user_function import RuleFunction, import_function

log = logging.getLogger(__name__)

REGEX_TIMEOUT_S = 0.02
MAX_PATTERN_CHARS = 2_000
# Tokens are estimated, not counted: the route runs before a model (and its tokenizer) is
# chosen. Words and punctuation marks come within ~20% of BPE counts for English prose.
_TOKEN = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


class Condition(Protocol):
    def check(self, request: RouteInput, text: str) -> str | None:
        """What matched, said for people; None when the condition does not hold."""
        ...


class Skipped(Exception):
    """A condition could not be decided (a regex timed out, a user function raised)."""


@dataclass(frozen=True)
class Length:
    unit: str  # "chars" or "tokens"
    low: int | None
    high: int | None

    def check(self, request: RouteInput, text: str) -> str | None:
        size = len(text) if self.unit == "chars" else estimate_tokens(text)
        if self.low is not None and size < self.low:
            return None
        if self.high is not None and size > self.high:
            return None
        bounds = " and ".join(
            part
            for part in (
                f">= {self.low}" if self.low is not None else "",
                f"<= {self.high}" if self.high is not None else "",
            )
            if part
        )
        return f"{size} {self.unit} {bounds}"


class Keywords:
    """Any of the words or phrases, case-insensitive, not inside a longer word."""

    def __init__(self, words: Sequence[str]) -> None:
        cleaned = sorted({w.strip().lower() for w in words if w.strip()}, key=len, reverse=True)
        # Literal alternatives only (escaped): linear time whatever the text.
        self._pattern = re.compile(
            r"(?<!\w)(?:" + "|".join(re.escape(w) for w in cleaned) + r")(?!\w)", re.IGNORECASE
        )

    def check(self, request: RouteInput, text: str) -> str | None:
        found = self._pattern.search(text)
        return f"keyword {found.group(0).lower()!r}" if found else None


class Regex:
    def __init__(self, pattern: str, *, field: str) -> None:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise ConfigError(
                f"pattern of {len(pattern)} characters",
                file=None,
                field=field,
                fix=f"keep a pattern under {MAX_PATTERN_CHARS} characters",
            )
        try:
            self._pattern = regex.compile(pattern)
        except regex.error as exc:
            raise ConfigError(
                f"not a valid regular expression: {exc}",
                file=None,
                field=field,
                fix="fix the pattern (Python `re` syntax)",
            ) from None
        self._source = pattern

    def check(self, request: RouteInput, text: str) -> str | None:
        try:
            found = self._pattern.search(text, timeout=REGEX_TIMEOUT_S)
        except TimeoutError:
            raise Skipped(
                f"regex {self._source!r} gave up after {REGEX_TIMEOUT_S * 1000:.0f} ms"
            ) from None
        return f"regex {self._source!r}" if found else None


@dataclass(frozen=True)
class MetadataEquals:
    expected: Mapping[str, str]

    def check(self, request: RouteInput, text: str) -> str | None:
        if all(request.metadata.get(k) == v for k, v in self.expected.items()):
            return "metadata " + ", ".join(f"{k}={v}" for k, v in sorted(self.expected.items()))
        return None


class UserFunction:
    def __init__(self, path: str, allowed: Sequence[str], *, field: str) -> None:
        self._path = path
        self._function: RuleFunction = import_function(path, allowed, field=field)

    def check(self, request: RouteInput, text: str) -> str | None:
        try:
            holds = self._function(request)
        except Exception as exc:  # a user's bug must not fail the request: the rule is skipped
            log.warning("routing function %s raised %s: %s", self._path, type(exc).__name__, exc)
            raise Skipped(f"function {self._path} raised {type(exc).__name__}") from None
        return f"function {self._path}" if holds is True else None


def conditions_of(rule: RuleSettings, allowed: Sequence[str], *, field: str) -> list[Condition]:
    """The rule's conditions, cheapest first, so a rule that fails early skips the costly ones."""
    found: list[Condition] = []
    if rule.min_chars is not None or rule.max_chars is not None:
        found.append(Length("chars", rule.min_chars, rule.max_chars))
    if rule.min_tokens is not None or rule.max_tokens is not None:
        found.append(Length("tokens", rule.min_tokens, rule.max_tokens))
    if rule.metadata is not None:
        found.append(MetadataEquals(dict(rule.metadata)))
    if rule.keywords is not None:
        found.append(Keywords(rule.keywords))
    if rule.regex is not None:
        found.append(Regex(rule.regex, field=f"{field}.regex"))
    if rule.function is not None:
        found.append(UserFunction(rule.function, allowed, field=f"{field}.function"))
    return found
