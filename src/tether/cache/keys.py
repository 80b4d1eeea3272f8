"""What a request is looked up by: its exact key, its semantic namespace and text, its tenant.

The exact key hashes everything that shapes the answer: the tenant, the prompt and version, the
model asked for, the normalized messages, the contract's name, the tools, the parameters and
the number of choices. Normalization is deliberately small (Unicode NFC, runs of whitespace
made one space, ends trimmed): it never merges two texts a model could read differently.

A semantic lookup compares one text (by default the last user turn; for a prompt that names
`compare:` variables, their values) and requires everything else to match exactly: the namespace is
the exact key's material without that text. Only entries in one namespace are ever compared.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from tether.cache.config import CacheMode, CacheSettings, PromptCache
from tether.messages import Message, ToolSpec

# Parameters that change how an answer travels, not what it says.
_TRANSPORT_PARAMS = frozenset({"stream", "stream_options", "user", "timeout", "metadata"})
# Requests whose answers carry per-call data a replay would fake.
_UNCACHEABLE_PARAMS = frozenset({"logprobs", "top_logprobs"})
SHARED_SCOPE = "shared"
LOCAL_SCOPE = "local"


@dataclass(frozen=True)
class Policy:
    """The cache policy one request gets: [cache] settings under its prompt's `cache:`."""

    mode: CacheMode
    ttl_s: float
    delta: float
    compare: tuple[str, ...] | None
    shared: bool
    tags: tuple[str, ...]

    @classmethod
    def of(cls, settings: CacheSettings, prompt: PromptCache | None) -> Policy:
        own = prompt or PromptCache()
        return cls(
            mode=own.mode or settings.mode,
            ttl_s=own.ttl_s or settings.ttl_s,
            delta=own.delta or settings.semantic.delta,
            compare=own.compare,
            shared=own.shared,
            tags=own.tags,
        )


@dataclass(frozen=True)
class Lookup:
    key: str  # the exact key
    namespace: str  # entries whose texts may be compared with this one
    text: str | None  # the text compared semantically; None: exact lookups only
    scope: str  # the tenant: "key:<id>", "local" (library and CLI) or "shared"
    head: tuple[Any, ...] = field(default=(), compare=False)  # the key's material but text


def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _digest(material: object) -> str:
    raw = orjson.dumps(material, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _message(message: Message) -> list[Any]:
    calls = [[call.name, call.arguments] for call in message.tool_calls]
    return [message.role, normalize(message.content), calls, message.tool_call_id]


def _tools(tools: ToolSpec | None) -> list[Any] | None:
    if tools is None:
        return None
    offered = [[t.name, t.description, t.parameters] for t in tools.tools]
    return [offered, tools.choice, tools.function, tools.parallel]


def cacheable(params: Mapping[str, Any]) -> bool:
    return not any(params.get(name) for name in _UNCACHEABLE_PARAMS)


def lookup(
    *,
    scope: str,
    prompt: str | None,
    version: str | None,
    model: str,
    messages: Sequence[Message],
    inputs: Mapping[str, Any],
    contract: str | None,
    tools: ToolSpec | None,
    params: Mapping[str, Any],
    n: int,
) -> Lookup:
    """The request's exact key (its namespace and text come with `by_meaning`, only when an
    exact lookup missed)."""
    answer_params = {k: v for k, v in params.items() if k not in _TRANSPORT_PARAMS}
    head = (scope, prompt, version, model, contract, _tools(tools), answer_params, n)
    rendered = [_message(m) for m in messages]
    key = _digest([head, rendered])
    return Lookup(key=key, namespace=key, text=None, scope=scope, head=head)


def by_meaning(
    found: Lookup,
    messages: Sequence[Message],
    inputs: Mapping[str, Any],
    compare: tuple[str, ...] | None,
    tools: ToolSpec | None,
) -> Lookup:
    """`found` with the text compared by meaning and its namespace (unchanged when nothing
    may be compared)."""
    text, rest = _semantic_part(messages, inputs, compare, tools)
    if text is None:
        return found
    return replace(found, text=text, namespace=_digest([found.head, rest]))


def _semantic_part(
    messages: Sequence[Message],
    inputs: Mapping[str, Any],
    compare: tuple[str, ...] | None,
    tools: ToolSpec | None,
) -> tuple[str | None, object]:
    """(the text compared, everything else), or (None, ...) when nothing may be compared."""
    if compare is not None:
        if any(not isinstance(inputs.get(name), str) for name in compare):
            return None, None  # a named variable missing or not text: exact only
        text = "\n".join(normalize(inputs[name]) for name in compare)
        rest = {k: v for k, v in sorted(inputs.items()) if k not in compare}
        return text, ["compare", list(compare), rest]
    if tools is not None or not messages or messages[-1].role != "user":
        return None, None  # tool turns and calls are matched exactly, never by meaning
    last = normalize(messages[-1].content)
    return last, ["last-user", [_message(m) for m in messages[:-1]]]
