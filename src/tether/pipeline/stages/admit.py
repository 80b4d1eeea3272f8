"""admit: may this caller make this request, and can its limits hold it?

Scopes first (a key limited to some models or prompts), then one reservation against every
limit that applies: the key's request and token rates, the key's budget and the prompt's
budget. The reservation holds the request's maximum: its input plus `max_tokens` of output at
the price of the dearest model that may answer it (the router's choices and the fallbacks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tether.costs.limits.base import Budget, Claim, LimitStore, RateLimit
from tether.costs.limits.config import BudgetSettings
from tether.costs.pricing import cost_usd
from tether.errors import KeyScopeError, ModelNotFound
from tether.messages import Usage
from tether.pipeline.context import Context
from tether.pipeline.stage import Stage
from tether.providers.pool import ProviderPool


class Admit(Stage):
    name = "admit"

    def __init__(
        self,
        store: LimitStore,
        pool: ProviderPool,
        budgets: Sequence[BudgetSettings],
        possible_models: Callable[[str], Iterable[str]],
    ) -> None:
        self._store = store
        self._pool = pool
        self._budgets = {b.prompt: b for b in budgets}
        self._possible_models = possible_models

    async def run(self, ctx: Context) -> None:
        key = ctx.ask.key
        model = ctx.model or ""
        prompt = ctx.prompt_name
        if key is None and not self._budgets:
            return  # no caller limits, no prompt budgets: nothing to check or hold
        if key is not None:
            if prompt is not None and not key.allows_prompt(prompt):
                raise KeyScopeError("prompt", prompt)
            if not key.allows_model(model, via_prompt=prompt is not None):
                raise KeyScopeError("model", model)
        claim = self._claim(ctx)
        if claim.empty:
            return
        if claim.budgets or any(r.unit == "tokens" for r in claim.rates):
            # Counting tokens may tokenize with (and first load) a local model: off the loop.
            models = list(self._possible_models(model))
            tokens, cost = await asyncio.to_thread(self.maximum, ctx, models)
            claim = Claim(claim.rates, claim.budgets, tokens=tokens, cost_usd=cost)
        ctx.reservation = await self._store.reserve(claim)

    def _claim(self, ctx: Context) -> Claim:
        rates: list[RateLimit] = []
        budgets: list[Budget] = []
        key = ctx.ask.key
        if key is not None:
            scope = f"key:{key.id}"
            if key.rpm is not None:
                rates.append(RateLimit(scope, "requests", key.rpm))
            if key.tpm is not None:
                rates.append(RateLimit(scope, "tokens", key.tpm))
            if key.budget_usd is not None:
                budgets.append(Budget.for_key(key.id, key.budget_usd, key.budget_period))
        prompt = ctx.prompt_name
        configured = self._budgets.get(prompt) if prompt is not None else None
        if configured is not None and prompt is not None:
            budgets.append(Budget.for_prompt(prompt, configured.usd, configured.period))
        return Claim(tuple(rates), tuple(budgets))

    def maximum(self, ctx: Context, models: Iterable[str]) -> tuple[int, float]:
        """The most one attempt of this request may use: tokens, and money at the dearest
        of `models`."""
        text = "".join(m.content for m in ctx.messages) or "".join(ctx.ask.texts)
        out_tokens = 0 if ctx.ask.operation == "embed" else _max_tokens(ctx.params) * ctx.ask.n
        most_tokens, most_cost = 0, 0.0
        for name in models:
            try:
                _, provider, price = self._pool.resolve(name)
            except ModelNotFound:
                continue
            counted = provider.count_tokens(text) if text else 0
            # No tokenizer at hand: a generous estimate (English runs about 4 characters a
            # token; 2 leaves room for code and other scripts).
            in_tokens = counted if counted is not None else len(text) // 2 + 1
            usage = Usage(input_tokens=in_tokens, output_tokens=out_tokens)
            most_tokens = max(most_tokens, usage.total_tokens)
            most_cost = max(most_cost, cost_usd(usage, price))
        return most_tokens, most_cost


def _max_tokens(params: dict[str, Any]) -> int:
    from tether.messages import GenerationParams

    given = params.get("max_tokens")
    return int(given) if given is not None else GenerationParams().max_tokens
