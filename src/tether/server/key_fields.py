"""Bounds on what an admin may set on a virtual key, checked before anything is stored.

Every path that creates a key (the admin API, `tether keys create`, library code) passes
through `check_key_fields`, so a negative limit or a number the database cannot hold is a
clear 400 naming the field rather than a stored row that misbehaves or a 500.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tether.errors import InvalidRequest

MAX_RATE = 2**31 - 1  # rpm and tpm live in 32-bit integer columns on PostgreSQL
MAX_BUDGET_USD = 1e9
MAX_NAME_CHARS = 200
MAX_SCOPE_ENTRIES = 1000
BUDGET_PERIODS = ("day", "month", "total")


def check_key_fields(
    name: str,
    *,
    models: Sequence[str] | None,
    prompts: Sequence[str] | None,
    rpm: int | None,
    tpm: int | None,
    budget_usd: float | None,
    budget_period: str = "total",
) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(
            f"`name` must be 1 to {MAX_NAME_CHARS} characters, not blank", param="name"
        )
    for field, names in (("models", models), ("prompts", prompts)):
        if names is None:
            continue
        if len(names) > MAX_SCOPE_ENTRIES:
            raise InvalidRequest(
                f"`{field}` may list at most {MAX_SCOPE_ENTRIES} names", param=field
            )
        if any(not n or len(n) > MAX_NAME_CHARS for n in names):
            raise InvalidRequest(
                f"each name in `{field}` must be 1 to {MAX_NAME_CHARS} characters", param=field
            )
    for field, rate in (("rpm", rpm), ("tpm", tpm)):
        if rate is not None and not 0 <= rate <= MAX_RATE:
            raise InvalidRequest(
                f"`{field}` must be between 0 and {MAX_RATE} (0 refuses every request)",
                param=field,
            )
    if budget_usd is not None and not (
        math.isfinite(budget_usd) and 0 <= budget_usd <= MAX_BUDGET_USD
    ):
        raise InvalidRequest(
            f"`budget_usd` must be between 0 and {MAX_BUDGET_USD:g}", param="budget_usd"
        )
    if budget_period not in BUDGET_PERIODS:
        raise InvalidRequest(
            f"`budget_period` must be one of {', '.join(BUDGET_PERIODS)}", param="budget_period"
        )
