"""Plain typed data that travels along the request path."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model made: `arguments` is the JSON text it wrote."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. An assistant turn may carry `tool_calls` (its content then often empty); a
    `tool` turn is the result of the call named by `tool_call_id`."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; `parameters` is the JSON Schema of its arguments."""

    name: str
    parameters: Mapping[str, Any]
    description: str | None = None
    strict: bool = False


ToolChoice = Literal["none", "auto", "required"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """The tools offered to the model and how it may use them. `function` names the one tool
    it must call (OpenAI's `{"type": "function", ...}` choice); `parallel` allows several calls
    in one turn."""

    tools: tuple[Tool, ...]
    choice: ToolChoice = "auto"
    function: str | None = None
    parallel: bool = True

    @property
    def required(self) -> bool:
        """Whether the model must answer with a call rather than text."""
        return self.function is not None or self.choice == "required"

    @property
    def callable(self) -> tuple[Tool, ...]:
        """The tools a call may name under this choice."""
        if self.choice == "none":
            return ()
        if self.function is not None:
            return tuple(t for t in self.tools if t.name == self.function)
        return self.tools


def as_messages(prompt: str | Iterable[Message | Mapping[str, str]]) -> tuple[Message, ...]:
    """Accept a plain string, Message objects, or OpenAI-style role/content dicts."""
    if isinstance(prompt, str):
        return (Message("user", prompt),)
    out: list[Message] = []
    for item in prompt:
        if isinstance(item, Message):
            out.append(item)
            continue
        role, content = item.get("role"), item.get("content")
        if role not in ROLES - {"tool"} or not isinstance(content, str):
            raise ValueError(
                f"message {len(out)} needs role in {sorted(ROLES)} and string content, "
                f"got role={role!r}"
            )
        out.append(Message(role, content))  # type: ignore[arg-type]  # checked against ROLES
    if not out:
        raise ValueError("at least one message is required")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one call was billed for.

    `input_tokens` counts every prompt token, however it was billed; `cached_input_tokens`
    (read from the provider's prompt cache) and `cache_write_tokens` (written to it) are the
    parts of it billed at their own rates. Providers that report them separately (Anthropic)
    are normalised to this shape when their usage is parsed.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        """Input tokens billed at the plain input rate."""
        return max(0, self.input_tokens - self.cached_input_tokens - self.cache_write_tokens)

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling settings. Those past `stop` are sent only where set (None, empty or False
    means the provider's default); which ones a provider honours is in its capabilities."""

    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias) pairs
    logprobs: bool = False
    top_logprobs: int | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A sampled token's log probability, with the most likely alternatives at its position."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """What a provider is asked to produce: a JSON value meeting `schema`.

    `schema` is the enforcement schema (possibly tightened from the contract's own schema so that
    strict modes can apply); `strict` says every keyword in it can be enforced upstream.
    """

    name: str
    schema: Mapping[str, Any]
    strict: bool


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One request to one provider: one attempt of a logical request."""

    messages: tuple[Message, ...]
    params: GenerationParams = field(default_factory=GenerationParams)
    output: OutputSpec | None = None
    # How many trailing messages repair an earlier attempt (its output and what was wrong with
    # it): a provider that adapts to the prompt (few-shot or not) looks at `prompt` instead.
    repair_turns: int = 0
    tools: ToolSpec | None = None
    # Independent choices wanted from this one call (providers whose capabilities say
    # `supports_n`); the others come back as the completion's `alternatives`.
    n: int = 1

    @property
    def prompt(self) -> tuple[Message, ...]:
        """The messages of the first attempt, without any repair turns."""
        return self.messages[: len(self.messages) - self.repair_turns]


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: Usage
    model: str
    provider: str
    finish_reason: str = "stop"  # "tool_calls" when the model answered with calls
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] | None = None
    # The other choices of a call made with n > 1; their tokens are in this one's usage.
    alternatives: tuple[Completion, ...] = ()


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a streamed completion; the last one carries usage and the finish reason."""

    text: str
    usage: Usage | None = None
    finish_reason: str | None = None
