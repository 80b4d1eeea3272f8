"""Column types that store any str faithfully on every database.

PostgreSQL `text` cannot hold NUL (U+0000), which model outputs and request fields can carry.
On PostgreSQL these types escape NUL on the way in and undo it on the way out; SQLite stores
NUL as is and sees no change. The escape character escapes itself, so every str round-trips,
including one that already contains the escape sequence; a private-use code point keeps
ordinary text, and searches over it, unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Dialect, String, Text, TypeDecorator

ESCAPE = "\ue000"
_ESCAPED = re.compile(f"{ESCAPE}([{ESCAPE}0])")  # any other pair was never written by escape_nul


def escape_nul(value: str) -> str:
    if "\x00" not in value and ESCAPE not in value:
        return value
    return value.replace(ESCAPE, ESCAPE + ESCAPE).replace("\x00", ESCAPE + "0")


def unescape_nul(value: str) -> str:
    if ESCAPE not in value:
        return value
    return _ESCAPED.sub(lambda m: ESCAPE if m[1] == ESCAPE else "\x00", value)


class NulSafe(TypeDecorator[str]):
    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and dialect.name == "postgresql":
            return escape_nul(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and dialect.name == "postgresql":
            return unescape_nul(value)
        return value


class NulSafeText(NulSafe):
    impl = Text
    cache_ok = True  # read from each class itself, never inherited


class NulSafeString(NulSafe):
    impl = String
    cache_ok = True
