"""Money as people read it in reports."""

from __future__ import annotations

import math


def usd(value: float) -> str:
    """Three significant digits without exponent: local models cost millionths of a dollar."""
    if value == 0:
        return "$0"
    decimals = max(2, 2 - math.floor(math.log10(abs(value))))
    return f"${value:,.{decimals}f}"
