"""Check functions for `python` assertions in tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_negative(value: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    return value["sentiment"] == "negative"


def has_three_themes(value: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    assert len(value["themes"]) == 3, "expected three themes"
    return True


def returns_false(value: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    return False
