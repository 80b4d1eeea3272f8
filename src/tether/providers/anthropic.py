"""Anthropic Messages API. Structured output goes through a forced tool call whose input schema
is the contract fitted to Anthropic's strict subset (providers/schema_profiles); the tool input
comes back as the JSON value to validate. The Messages API of this SDK generation takes no sampling
parameters, so `temperature` and `seed` are not sent."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, ClassVar

import anthropic
import httpx2

from tether.messages import Completion, ProviderCall, Usage
from tether.providers.anthropic_tools import (
    add_tools,
    anthropic_messages,
    finish_reason,
    read_tool_calls,
)
from tether.providers.base import Capabilities
from tether.providers.hosted import HostedProvider
from tether.providers.schema_profiles import forced_tool, restored
from tether.providers.tokenizers import (
    PromptCount,
    anthropic_tool_tokens,
    estimating,
    openai_chat_tokens,
)


class AnthropicProvider(HostedProvider[anthropic.Anthropic, anthropic.AsyncAnthropic]):
    kind = "anthropic"
    default_base_url = "https://api.anthropic.com"
    default_capabilities = Capabilities(
        honours_timeout=True,
        supports_tools=True,
        engine="anthropic",
        sampling_params=frozenset({"stop"}),  # stop_sequences; no seed, logprobs or penalties
    )
    sdk: ClassVar[ModuleType] = anthropic

    def count_prompt(self, call: ProviderCall) -> PromptCount:
        """An estimate throughout: Claude's tokenizer is not public. The messages are framed as
        OpenAI frames them; a contract adds the documented tool-use system prompt and the
        tool's definition."""
        args = self._arguments(call)
        tokenizer = estimating()
        messages = [{"role": m.role, "content": m.content} for m in call.messages]
        total = openai_chat_tokens(messages, tokenizer.count)
        vendor = anthropic_tool_tokens(self.model, args.get("tools", []))
        return PromptCount(
            total=total + vendor,
            exact=False,
            tokenizer=tokenizer,
            sent=call.messages,
            framing="message framing (estimate)",
            vendor_tokens=vendor,
            vendor_part="tool use system prompt and tool definition",
            vendor_exact=False,
        )

    def _new_sync(self, *, api_key: str, http_client: httpx2.Client | None) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=api_key, http_client=http_client, **self._client_options)

    def _new_async(
        self, *, api_key: str, http_client: httpx2.AsyncClient | None
    ) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=api_key, http_client=http_client, **self._client_options
        )

    def _send(self, client: anthropic.Anthropic, arguments: dict[str, Any]) -> Any:
        return client.messages.create(**arguments)

    async def _asend(self, client: anthropic.AsyncAnthropic, arguments: dict[str, Any]) -> Any:
        return await client.messages.create(**arguments)

    def _arguments(self, call: ProviderCall) -> dict[str, Any]:
        system, turns = anthropic_messages(call.messages)
        args: dict[str, Any] = {
            "model": self.model,
            "max_tokens": call.params.max_tokens,
            "messages": turns,
        }
        if system:
            args["system"] = system
        if call.params.stop:
            args["stop_sequences"] = list(call.params.stop)
        if call.output is not None:
            args["tools"] = [forced_tool(call.output, self.capabilities)]
            args["tool_choice"] = {"type": "tool", "name": call.output.name}
        if call.tools is not None:
            add_tools(args, call.tools)
        return args

    def _completion(self, response: Any, call: ProviderCall) -> Completion:
        text = ""
        answer_tool = call.output.name if call.output is not None else None
        calls = read_tool_calls(response.content, answer_tool=answer_tool)
        for block in response.content:
            if block.type == "tool_use" and block.name == answer_tool and call.output:
                text = restored(
                    json.dumps(block.input, ensure_ascii=False), call.output, self.capabilities
                )
                break
            if block.type == "text":
                text += block.text
        return Completion(
            text=text,
            usage=anthropic_usage(response.usage),
            model=response.model or self.model,
            provider=self.kind,
            finish_reason=finish_reason(response.stop_reason, calls),
            tool_calls=calls,
        )


def anthropic_usage(usage: anthropic.types.Usage) -> Usage:
    """Anthropic's `input_tokens` counts only the input after the last cache breakpoint: cache
    reads and writes are reported beside it, not within it. tether's `input_tokens` counts the
    whole prompt (as OpenAI's `prompt_tokens` does), with the cached parts broken out."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return Usage(
        input_tokens=usage.input_tokens + read + written,
        output_tokens=usage.output_tokens,
        cached_input_tokens=read,
        cache_write_tokens=written,
    )
