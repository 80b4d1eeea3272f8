"""OpenAI-compatible chat completions over HTTP: OpenAI, vLLM, llama.cpp server, Ollama, ...

Structured output uses `response_format: json_schema` where the server supports it, fitted to
the server's schema profile (providers/schema_profiles: strict for OpenAI, as the engine takes
it elsewhere), else `json_object` with the schema in a system message.

The output budget goes out as `max_completion_tokens` to OpenAI's own API (it deprecates
`max_tokens`, which o-series and gpt-5 reasoning models refuse) and as `max_tokens` to other
servers (vLLM, llama.cpp server, Ollama), unless the model's capabilities name the field.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx2
import openai

from tether.contracts.instructions import schema_instruction
from tether.errors import ProviderError
from tether.messages import Completion, Message, ProviderCall, StreamChunk, Usage
from tether.providers.base import SAMPLING_PARAMS, Capabilities
from tether.providers.fast_http import FastChatTransport
from tether.providers.hosted import HostedProvider
from tether.providers.openai_usage import sdk_usage
from tether.providers.openai_wire import parse_completion, request_fields, wire_messages
from tether.providers.schema_profiles import response_format, restored
from tether.providers.tokenizers import (
    PromptCount,
    added_instruction,
    for_openai_model,
    json_schema_format_tokens,
    openai_chat_tokens,
)

OPENAI_HOST = "api.openai.com"


class OpenAICompatProvider(HostedProvider[openai.OpenAI, openai.AsyncOpenAI]):
    kind = "openai"
    default_base_url = "https://api.openai.com/v1"
    default_capabilities = Capabilities(
        honours_timeout=True,
        supports_json_schema=True,
        supports_tools=True,
        can_stream=True,
        supports_embeddings=True,
        sampling_params=SAMPLING_PARAMS,
        supports_n=True,
        # engine: from the URL or the model's settings (providers/schema_profiles)
    )
    sdk: ClassVar[ModuleType] = openai
    _fast: FastChatTransport | None = None

    def count_tokens(self, text: str) -> int | None:
        tokenizer = for_openai_model(self.model)
        return tokenizer.count(text) if tokenizer.exact else None

    def count_prompt(self, call: ProviderCall) -> PromptCount:
        """OpenAI's per-message rule over the request as `_arguments` builds it: exact for a
        model tiktoken knows; a json_schema response format adds an estimate."""
        args = self._arguments(call)
        tokenizer = for_openai_model(self.model)
        sent = tuple(Message(m["role"], m["content"]) for m in args["messages"])
        total = openai_chat_tokens(args["messages"], tokenizer.count)
        response_format = args.get("response_format", {})
        vendor = 0
        if response_format.get("type") == "json_schema":
            has_system = any(m.role == "system" for m in sent)
            vendor = json_schema_format_tokens(
                response_format["json_schema"], tokenizer.count, has_system=has_system
            )
        return PromptCount(
            total=total + vendor,
            exact=tokenizer.exact and not vendor,
            tokenizer=tokenizer,
            sent=sent,
            instruction=added_instruction(call, sent),
            framing="message framing (OpenAI's per-message rule)",
            vendor_tokens=vendor,
            vendor_part="json_schema response format",
            vendor_exact=False,
        )

    def _new_sync(self, *, api_key: str, http_client: httpx2.Client | None) -> openai.OpenAI:
        return openai.OpenAI(api_key=api_key, http_client=http_client, **self._client_options)

    def _new_async(
        self, *, api_key: str, http_client: httpx2.AsyncClient | None
    ) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(api_key=api_key, http_client=http_client, **self._client_options)

    def _send(self, client: openai.OpenAI, arguments: dict[str, Any]) -> Any:
        return client.chat.completions.create(**arguments)

    async def _asend(self, client: openai.AsyncOpenAI, arguments: dict[str, Any]) -> Any:
        return await client.chat.completions.create(**arguments)

    async def acomplete(self, call: ProviderCall) -> Completion:
        """Through the lean aiohttp transport, unless the caller injected its own client."""
        if self._ahttp is not None or self._only_sync_transport:
            return await super().acomplete(call)
        if self._fast is None:
            self._fast = FastChatTransport(
                base_url=self.base_url,
                api_key=self._key(),
                provider=self.kind,
                model=self.model,
                key_env=self._api_key_env,
                timeout_s=self._client_options["timeout"],
            )
        data = await self._fast.create(self._arguments(call))
        return self._parsed(data, call)

    def close(self) -> None:
        super().close()
        if self._fast is not None:
            self._fast.close()

    async def aembed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        if self._async is None:
            self._async = self._new_async(api_key=self._key(), http_client=self._ahttp)
        try:
            response = await self._async.embeddings.create(model=self.model, input=texts)
        except openai.APIError as exc:
            raise self._translate(exc) from None
        vectors = [list(item.embedding) for item in sorted(response.data, key=lambda d: d.index)]
        return vectors, Usage(response.usage.prompt_tokens if response.usage else 0, 0)

    async def astream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        if self._async is None:
            self._async = self._new_async(api_key=self._key(), http_client=self._ahttp)
        arguments = {
            **self._arguments(call),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        # The last usage the server reported: at the end (include_usage), or on every chunk
        # (vLLM's continuous usage); a stream that fails after it still owes it.
        usage: Usage | None = None
        finish = None
        try:
            stream = await self._async.chat.completions.create(**arguments)
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = sdk_usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.finish_reason:
                        finish = choice.finish_reason
                    if choice.delta.content:
                        yield StreamChunk(choice.delta.content)
        except openai.APIError as exc:
            raise _billed(self._translate(exc), usage) from None
        except httpx2.HTTPError as exc:  # the connection broke while reading the stream
            cut = ProviderError(
                f"the stream was cut: {type(exc).__name__}", provider=self.kind, model=self.model
            )
            raise _billed(cut, usage) from None
        if finish is None:
            # An upstream that closes the stream (or answers an empty 200) before saying why
            # it stopped has not finished: never pass that on as a complete answer.
            unfinished = ProviderError(
                "the stream ended before the model finished", provider=self.kind, model=self.model
            )
            raise _billed(unfinished, usage)
        yield StreamChunk("", usage=usage or Usage(), finish_reason=finish)

    def _arguments(self, call: ProviderCall) -> dict[str, Any]:
        messages = list(call.messages)
        args: dict[str, Any] = {
            "model": self.model,
            self._max_tokens_field(): call.params.max_tokens,
            "temperature": call.params.temperature,
        }
        if call.params.seed is not None:
            args["seed"] = call.params.seed
        if call.params.stop:
            args["stop"] = list(call.params.stop)
        if call.output is not None:
            args["response_format"], instruct = response_format(call.output, self.capabilities)
            if instruct:
                messages.insert(0, schema_instruction(call.output))
        args["messages"] = wire_messages(messages)
        args.update(request_fields(call))
        return args

    def _max_tokens_field(self) -> str:
        configured = self.capabilities.max_tokens_field
        if configured is not None:
            return configured
        host = urlsplit(self.base_url).hostname
        return "max_completion_tokens" if host == OPENAI_HOST else "max_tokens"

    def _completion(self, response: Any, call: ProviderCall) -> Completion:
        return self._parsed(response.model_dump(), call)

    def _parsed(self, data: dict[str, Any], call: ProviderCall) -> Completion:
        """One parser for the aiohttp path's JSON and the SDK's objects (dumped to JSON)."""
        return parse_completion(
            data,
            provider=self.kind,
            model=self.model,
            text=lambda text: restored(text, call.output, self.capabilities),
        )


def _billed(exc: Exception, usage: Usage | None) -> Exception:
    """`exc`, carrying what the server reported billing before the call failed."""
    if isinstance(exc, ProviderError):
        exc.usage = usage
    return exc
