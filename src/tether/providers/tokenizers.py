"""Counting what a request sends, offline.

OpenAI models are counted with tiktoken over the `o200k_base`/`cl100k_base` files shipped in
`encodings/` (tiktoken would download them), picked by tiktoken's own model table. A model with no
public tokenizer (Anthropic's, an unknown model behind an OpenAI-compatible server) is counted with
`o200k_base` as a stand-in, and every figure from it is marked an estimate.

A provider that can say what one call sends implements `CountsPrompts`: the prompt tokens of the
exact request, and the parts of it that tether or the vendor add around the caller's messages.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal, Protocol, runtime_checkable

import tiktoken
from tiktoken.model import encoding_name_for_model

from tether.messages import Message, ProviderCall

EncodingName = Literal["o200k_base", "cl100k_base"]

# sha256 of each uncompressed file, as tiktoken pins them (tiktoken_ext/openai_public.py).
_SHA256: dict[EncodingName, str] = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
# Split patterns and special tokens, as tiktoken defines the encodings.
_PATTERNS: dict[EncodingName, str] = {
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
}
_SPECIALS: dict[EncodingName, dict[str, int]] = {
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
}
# o200k_harmony (gpt-oss) is o200k_base plus special tokens plain text never contains.
_SAME_RANKS: dict[str, EncodingName] = {
    "o200k_base": "o200k_base",
    "o200k_harmony": "o200k_base",
    "cl100k_base": "cl100k_base",
}


@dataclass(frozen=True)
class Tokenizer:
    """Counts the tokens of a text. `exact`: it is the model's own tokenizer."""

    name: str
    exact: bool
    count: Callable[[str], int]


@cache
def encoding(name: EncodingName) -> tiktoken.Encoding:
    """One of the shipped encodings, loaded once and checked against tiktoken's pinned hash."""
    raw = gzip.decompress(
        resources.files("tether.providers").joinpath(f"encodings/{name}.tiktoken.gz").read_bytes()
    )
    if hashlib.sha256(raw).hexdigest() != _SHA256[name]:
        raise RuntimeError(f"the shipped {name} encoding is damaged (sha256 mismatch)")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }
    return tiktoken.Encoding(
        name, pat_str=_PATTERNS[name], mergeable_ranks=ranks, special_tokens=_SPECIALS[name]
    )


def tiktoken_tokenizer(name: EncodingName, *, exact: bool) -> Tokenizer:
    enc = encoding(name)

    def count(text: str) -> int:
        # Text that spells a special token is sent, and billed, as ordinary text.
        return len(enc.encode(text, disallowed_special=()))

    label = name if exact else f"{name}, standing in for the model's own tokenizer"
    return Tokenizer(label, exact, count)


def openai_encoding(model: str) -> EncodingName | None:
    """The encoding tiktoken's model table gives `model`, when it is one shipped here."""
    try:
        return _SAME_RANKS.get(encoding_name_for_model(model))
    except KeyError:
        return None


def for_openai_model(model: str) -> Tokenizer:
    """`model`'s tokenizer when tiktoken knows the model, else an estimate."""
    name = openai_encoding(model)
    if name is None:
        return estimating()
    return tiktoken_tokenizer(name, exact=True)


def estimating() -> Tokenizer:
    """For models without a public tokenizer: a modern BPE of a similar vocabulary size."""
    return tiktoken_tokenizer("o200k_base", exact=False)


# OpenAI's rule for chat models (the cookbook's "How to count tokens with tiktoken"): every
# message is framed by 3 tokens, a `name` adds 1, and every reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMER = 3


def openai_chat_tokens(messages: Sequence[Mapping[str, str]], count: Callable[[str], int]) -> int:
    total = REPLY_PRIMER
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            total += count(value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


@dataclass(frozen=True)
class PromptCount:
    """The prompt tokens of one request as it goes out.

    `total` is what the request is billed for; `exact` says it is the model's own count.
    `sent` are the messages as sent, `instruction` tether's schema instruction among them when
    the provider adds one. `vendor_tokens` (inside `total`) are what the vendor adds for the
    output schema (a response format, a tool and its system prompt), named by `vendor_part`;
    the rest of `total` beyond the messages' text is `framing` (chat template, per-message
    overhead).
    """

    total: int
    exact: bool
    tokenizer: Tokenizer
    sent: tuple[Message, ...]
    instruction: Message | None = None
    framing: str = "chat template"
    vendor_tokens: int = 0
    vendor_part: str = ""
    vendor_exact: bool = True


@runtime_checkable
class CountsPrompts(Protocol):
    def count_prompt(self, call: ProviderCall) -> PromptCount:
        """The prompt tokens `call` would send, without sending it."""
        ...


def added_instruction(call: ProviderCall, sent: Sequence[Message]) -> Message | None:
    """The message a provider put before the caller's: tether's schema instruction."""
    return sent[0] if len(sent) == len(call.messages) + 1 else None


def json_schema_format_tokens(
    json_schema: Mapping[str, object], count: Callable[[str], int], *, has_system: bool
) -> int:
    """An estimate of what a `json_schema` response format adds (OpenAI does not document it):
    the schema set out as OpenAI's harmony format documents structured output, a
    `# Response Formats` section of the system message, in a message of its own when the
    request has no system message."""
    schema = json.dumps(json_schema.get("schema", {}), ensure_ascii=False, separators=(",", ":"))
    section = f"\n\n# Response Formats\n\n## {json_schema.get('name', '')}\n\n{schema}"
    framing = 0 if has_system else TOKENS_PER_MESSAGE + count("system")
    return count(section) + framing


# The system prompt Anthropic adds when tools are given, for tool_choice "any" or "tool" (its
# "tool use system prompt token count" table); models not listed get the recent models' figure.
ANTHROPIC_TOOL_PROMPT = {
    "claude-3-opus": 281,
    "claude-3-sonnet": 235,
    "claude-3-haiku": 340,
    "claude-3-5-haiku": 340,
}
ANTHROPIC_TOOL_PROMPT_DEFAULT = 313


def anthropic_tool_tokens(model: str, tools: Sequence[Mapping[str, object]]) -> int:
    """The tool-use system prompt plus the tools' definitions (name, description, schema),
    the latter counted with the stand-in tokenizer: an estimate. No tools, no overhead."""
    if not tools:
        return 0
    prompt = next(
        (n for prefix, n in ANTHROPIC_TOOL_PROMPT.items() if model.startswith(prefix)),
        ANTHROPIC_TOOL_PROMPT_DEFAULT,
    )
    count = estimating().count
    return prompt + sum(count(json.dumps(tool, separators=(",", ":"))) for tool in tools)
