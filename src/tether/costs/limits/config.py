"""Settings for the limit stores and per-prompt budgets (read by tether.settings)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitSettings(_Strict):
    """Where rate limits and budgets are counted: `memory` (one replica), `database` (the
    gateway's database, shared by replicas) or `redis` (shared, fastest)."""

    store: Literal["memory", "database", "redis"] = "memory"
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="for store = redis")
    key_prefix: str = Field(
        default="tether", min_length=1, description="Redis keys start with this and a colon"
    )


class BudgetSettings(_Strict):
    """A money budget on every request made through one prompt, whatever the key."""

    prompt: str = Field(min_length=1)
    usd: float = Field(gt=0, allow_inf_nan=False)
    period: Literal["day", "month", "total"] = "month"


def _one_per_prompt(budgets: list[BudgetSettings]) -> list[BudgetSettings]:
    seen: set[str] = set()
    for budget in budgets:
        if budget.prompt in seen:
            raise ValueError(
                f"prompt {budget.prompt!r} has two budgets; keep one [[budgets]] entry per prompt"
            )
        seen.add(budget.prompt)
    return budgets


# Settings.budgets: one entry per prompt (a second would silently replace the first).
PromptBudgets = Annotated[list[BudgetSettings], AfterValidator(_one_per_prompt)]
