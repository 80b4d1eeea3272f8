"""Python checks used by the feedback-sentiment test cases (`type: python` assertions).

Each check receives the validated output and the test inputs; it returns False or raises
AssertionError (with a message) to fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def mentions_theme_delivery(output: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    themes = output.get("themes", [])
    assert "delivery" in themes, f"expected a delivery theme, got {themes}"
    return True


def themes_are_unique(output: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    themes = output.get("themes", [])
    return len(themes) == len(set(themes))
