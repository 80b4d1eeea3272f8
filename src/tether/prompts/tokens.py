"""Where a prompt's tokens go, counted on the request that would be sent: the chat template or
message framing, system text, tether's schema instruction, each few-shot example, the
instructions, each input variable, and what the vendor adds for the output schema; and what
1,000 calls cost at the model's prices.

The total is the provider's count of the whole request (`CountsPrompts`), so it includes what no
part names; the framing part is that remainder. Each figure says whether it is the model's own
count or an estimate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.costs.pricing import cost_usd
from tether.engine import Plan
from tether.messages import ProviderCall, Usage
from tether.prompts.compiled import CompiledPrompt
from tether.providers.base import Provider
from tether.providers.tokenizers import CountsPrompts, PromptCount, Tokenizer, estimating
from tether.settings import PriceSettings


@dataclass(frozen=True)
class Part:
    name: str
    tokens: int
    exact: bool


@dataclass(frozen=True)
class TokenReport:
    parts: tuple[Part, ...]
    output_tokens: int
    exact: bool  # the input total is the model's own count
    tokenizer: str

    @property
    def input_tokens(self) -> int:
        return sum(p.tokens for p in self.parts)

    def cost_per_1000_calls(self, price: PriceSettings) -> float:
        return 1000 * cost_usd(Usage(self.input_tokens, self.output_tokens), price)


def sample_inputs(compiled: CompiledPrompt) -> Mapping[str, Any]:
    """Typical inputs: the first test case's, else the first example's."""
    spec = compiled.spec
    if spec.tests:
        return spec.tests[0].inputs
    if spec.examples:
        return spec.examples[0].inputs
    return {}


def count_call(provider: Provider, call: ProviderCall) -> PromptCount:
    """The provider's count of `call`; for a provider that cannot say what it sends, the
    messages' text alone, an estimate."""
    if isinstance(provider, CountsPrompts):
        return provider.count_prompt(call)
    tokenizer = estimating()
    if provider.count_tokens("probe") is not None:
        own = provider.count_tokens
        tokenizer = Tokenizer(provider.model, True, lambda text: own(text) or 0)
    total = sum(tokenizer.count(m.content) for m in call.messages)
    return PromptCount(total, False, tokenizer, call.messages, framing="framing (unknown)")


def token_report(
    compiled: CompiledPrompt, plan: Plan[Any], inputs: Mapping[str, Any]
) -> TokenReport:
    """Parts of the first call of `plan` (`compiled` rendered with `inputs`) as its provider
    sends it."""
    call = ProviderCall(plan.messages, plan.params, plan.output)
    counted = count_call(plan.provider, call)
    count, exact = counted.tokenizer.count, counted.tokenizer.exact
    spec = compiled.spec
    messages = call.messages
    system = [m for m in messages if m.role == "system"]
    shots = len(spec.examples) if any(m.role == "user" for m in spec.messages) else 0
    parts = [Part(f"system {i + 1}", count(m.content), exact) for i, m in enumerate(system)]
    if counted.instruction is not None:
        parts.append(Part("schema instruction", count(counted.instruction.content), exact))
    for index in range(shots):
        user, answer = messages[len(system) + 2 * index : len(system) + 2 * index + 2]
        parts.append(
            Part(f"example {index + 1}", count(user.content) + count(answer.content), exact)
        )
    rest = messages[len(system) + 2 * shots :]
    # Only the variables the template puts in the prompt: an input it never uses costs nothing.
    shown = "\n".join(m.content for m in rest)
    variables = {
        name: count(_text(value)) for name, value in inputs.items() if _text(value) in shown
    }
    rendered = sum(count(m.content) for m in rest)
    parts.append(Part("instructions", max(rendered - sum(variables.values()), 0), exact))
    parts += [Part(f"variable {name}", n, exact) for name, n in variables.items()]
    if counted.vendor_tokens:
        parts.append(Part(counted.vendor_part, counted.vendor_tokens, counted.vendor_exact))
    framing = counted.total - sum(p.tokens for p in parts)
    # The framing is the model's own count when the total is, or when only the vendor's part
    # is estimated (it is counted apart).
    framing_exact = exact and (counted.exact or counted.vendor_tokens > 0)
    parts.insert(0, Part(counted.framing, framing, framing_exact))
    outputs = [count(_answer(e.output)) for e in spec.examples]
    expected = round(sum(outputs) / len(outputs)) if outputs else spec.params.max_tokens or 512
    return TokenReport(tuple(parts), expected, counted.exact, counted.tokenizer.name)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _answer(value: Any) -> str:
    """An example's output as the prompt shows it (compact JSON, non-ASCII kept)."""
    return (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    )
