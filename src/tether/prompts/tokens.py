"""Where a prompt's tokens go: system text, instructions, each few-shot example, each input
variable; and what 1,000 calls cost at the model's prices."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.prompts.compiled import CompiledPrompt
from tether.settings import PriceSettings

# Fallback when the provider has no tokenizer at hand (hosted models): ~4 characters a token.
CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class Part:
    name: str
    tokens: int


@dataclass(frozen=True)
class TokenReport:
    parts: tuple[Part, ...]
    output_tokens: int
    exact: bool

    @property
    def input_tokens(self) -> int:
        return sum(p.tokens for p in self.parts)

    def cost_per_1000_calls(self, price: PriceSettings) -> float:
        per_call = (
            self.input_tokens * price.input_per_million
            + self.output_tokens * price.output_per_million
        ) / 1_000_000
        return per_call * 1000


def sample_inputs(compiled: CompiledPrompt) -> Mapping[str, Any]:
    """Typical inputs: the first test case's, else the first example's."""
    spec = compiled.spec
    if spec.tests:
        return spec.tests[0].inputs
    if spec.examples:
        return spec.examples[0].inputs
    return {}


def token_report(
    compiled: CompiledPrompt,
    count: Callable[[str], int | None],
    inputs: Mapping[str, Any] | None = None,
) -> TokenReport:
    values = dict(inputs if inputs is not None else sample_inputs(compiled))
    exact = count("probe") is not None

    def tokens(text: str) -> int:
        found = count(text)
        return found if found is not None else -(-len(text) // CHARS_PER_TOKEN)

    spec = compiled.spec
    messages = compiled.render(values)
    parts: list[Part] = []
    shots = 2 * len(spec.examples) if any(m.role == "user" for m in spec.messages) else 0
    system = [m for m in messages if m.role == "system"]
    for index, message in enumerate(system):
        parts.append(Part(f"system {index + 1}", tokens(message.content)))
    for index in range(len(spec.examples) if shots else 0):
        user, answer = messages[len(system) + 2 * index], messages[len(system) + 2 * index + 1]
        parts.append(Part(f"example {index + 1}", tokens(user.content) + tokens(answer.content)))
    rest = messages[len(system) + shots :]
    variable_tokens = {name: tokens(_text(value)) for name, value in values.items()}
    rendered = sum(tokens(m.content) for m in rest)
    parts.append(Part("instructions", max(rendered - sum(variable_tokens.values()), 0)))
    parts += [Part(f"variable {name}", n) for name, n in variable_tokens.items()]
    outputs = [tokens(_text(e.output)) for e in spec.examples]
    expected = round(sum(outputs) / len(outputs)) if outputs else spec.params.max_tokens or 512
    return TokenReport(tuple(parts), expected, exact)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
