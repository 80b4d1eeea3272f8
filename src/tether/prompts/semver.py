"""Semantic versions: parse, order, and name the kind of bump between two versions.

Twenty lines of the semver.org grammar do not warrant a dependency.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import IntEnum

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)


class Bump(IntEnum):
    NONE = 0
    PATCH = 1
    MINOR = 2
    MAJOR = 3


@functools.total_ordering
@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = _SEMVER.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.2.0)")
        major, minor, patch, pre, _build = match.groups()
        return cls(int(major), int(minor), int(patch), pre or "")

    def bump_over(self, older: SemVer) -> Bump:
        """What kind of increase `self` is over `older`."""
        if self.major != older.major:
            return Bump.MAJOR if self.major > older.major else Bump.NONE
        if self.minor != older.minor:
            return Bump.MINOR if self.minor > older.minor else Bump.NONE
        if self.patch != older.patch:
            return Bump.PATCH if self.patch > older.patch else Bump.NONE
        return Bump.NONE

    @property
    def _key(self) -> tuple[int, int, int, int, str]:
        # A pre-release sorts before its release: 1.0.0-rc.1 < 1.0.0.
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, self.prerelease)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key < other._key

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core
