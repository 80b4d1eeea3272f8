"""Turn messages into one prompt string for a local model.

A GGUF with a chat template is rendered with it (Jinja2, sandboxed, by llama-cpp-python's
formatter). A base model without one gets a few-shot transcript: the system text, then each
user/assistant turn as `Input:`/`Output:` lines, ending with `Output:` for the model to fill.
Few-shot examples are simply earlier user/assistant pairs.

Tools are rendered by a template that knows them (it mentions `tools`); for any other, the
tool format is spelled out and calls and results become text turns (providers/local_tools).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from tether.messages import Message, ToolSpec
from tether.providers.local_tools import (
    flattened,
    offered,
    template_messages,
    template_tools,
)

_LABELS = {"user": "Input", "assistant": "Output"}


@dataclass(frozen=True)
class RenderedPrompt:
    text: str
    stop: tuple[str, ...]


class TranscriptFormat:
    knows_tools = False

    def render(self, messages: Sequence[Message], tools: ToolSpec | None = None) -> RenderedPrompt:
        messages = _without_tool_turns(messages, tools)
        system = "\n\n".join(m.content for m in messages if m.role == "system")
        turns: list[str] = []
        for message in messages:
            if message.role == "system":
                continue
            line = f"{_LABELS[message.role]}: {message.content}"
            # A blank line before each Input groups a user turn with its answer.
            turns.append(("\n" if message.role == "user" and turns else "") + line)
        body = "\n".join(turns)
        head = f"{system}\n\n" if system else ""
        return RenderedPrompt(f"{head}{body}\nOutput:", stop=("\nInput:", "\n\n"))


class ChatTemplateFormat:
    def __init__(self, template: str, *, eos_token: str, bos_token: str) -> None:
        self._formatter = Jinja2ChatFormatter(template, eos_token=eos_token, bos_token=bos_token)
        self._eos = eos_token
        self.knows_tools = "tools" in template

    def render(self, messages: Sequence[Message], tools: ToolSpec | None = None) -> RenderedPrompt:
        if self.knows_tools:
            spec = offered(tools)
            formatted = self._formatter(
                messages=template_messages(messages),  # type: ignore[arg-type]
                tools=template_tools(spec) if spec is not None else None,  # type: ignore[arg-type]
            )
        else:
            plain = _without_tool_turns(messages, tools)
            formatted = self._formatter(
                messages=[{"role": m.role, "content": m.content} for m in plain]  # type: ignore[misc]
            )
        return RenderedPrompt(formatted.prompt, stop=(self._eos,) if self._eos else ())


def _without_tool_turns(messages: Sequence[Message], tools: ToolSpec | None) -> list[Message]:
    """Plain turns for a format that knows no tools (unchanged when there are none)."""
    spec = offered(tools)
    if spec is None and not any(m.tool_calls or m.role == "tool" for m in messages):
        return list(messages)
    return flattened(messages, spec)
