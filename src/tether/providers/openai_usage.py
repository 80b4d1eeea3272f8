"""The one reader of OpenAI's `usage` object, for every path that receives one (the SDK's
objects, the aiohttp transport's dicts, streamed chunks), so they cannot drift.

OpenAI's `prompt_tokens` counts every input token: `prompt_tokens_details.cached_tokens` (read
from the prompt cache, billed at the cached rate) and `cache_write_tokens` (written to it) are
parts of it, not additions. `completion_tokens` includes reasoning tokens, billed as output.
"""

from __future__ import annotations

from collections.abc import Mapping

from openai.types import CompletionUsage

from tether.messages import Usage


def openai_usage(raw: object) -> Usage:
    """tether's Usage from an OpenAI(-compatible) usage object (a JSON object; anything else,
    such as a missing one, counts as no usage)."""
    if not isinstance(raw, Mapping):
        return Usage()
    details = raw.get("prompt_tokens_details")
    if not isinstance(details, Mapping):
        details = {}
    prompt = _count(raw.get("prompt_tokens"))
    # A server that reports more cached than prompt tokens is clamped: never a negative rest.
    cached = min(_count(details.get("cached_tokens")), prompt)
    return Usage(
        input_tokens=prompt,
        output_tokens=_count(raw.get("completion_tokens")),
        cached_input_tokens=cached,
        cache_write_tokens=min(_count(details.get("cache_write_tokens")), prompt - cached),
    )


def sdk_usage(usage: CompletionUsage | None) -> Usage:
    """The same reading of an SDK `CompletionUsage` (or None)."""
    return openai_usage(usage.model_dump() if usage is not None else None)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
