"""A provider for tests: enqueue responses, inspect the calls it received. Public API."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

from tether.errors import ProviderError, SchemaProblem
from tether.messages import Completion, ProviderCall, StreamChunk, ToolCall, Usage
from tether.providers.base import SAMPLING_PARAMS, Capabilities
from tether.settings import ModelSettings, Settings

# A string is the model's text; a ToolCall (or a tuple of them) is the model calling tools.
Response = str | Completion | ToolCall | tuple[ToolCall, ...] | Exception
Responder = Callable[[ProviderCall], Response]


def _words(text: str) -> int:
    return len(text.split())


class FakeProvider:
    """Answers from a queue (or a responder function), records every call.

    Token counts are whitespace-separated words: predictable numbers for cost tests.
    """

    kind = "fake"

    def __init__(
        self,
        responses: Iterable[Response] = (),
        *,
        model: str = "fake-model",
        respond: Responder | None = None,
        capabilities: Capabilities | None = None,
        problems: Iterable[SchemaProblem] = (),
    ) -> None:
        self.model = model
        self.capabilities = capabilities or Capabilities(
            supports_json_schema=True,
            supports_tools=True,
            can_stream=True,
            supports_embeddings=True,
            sampling_params=SAMPLING_PARAMS,
        )
        self.calls: list[ProviderCall] = []
        self._queue: deque[Response] = deque(responses)
        self._respond = respond
        self._problems = list(problems)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, name: str, model: ModelSettings, settings: Settings) -> FakeProvider:
        return cls(model=model.upstream_model or name)

    def enqueue(self, *responses: Response) -> None:
        with self._lock:
            self._queue.extend(responses)

    def schema_problems(self, schema: Mapping[str, Any]) -> list[SchemaProblem]:
        return list(self._problems)

    def count_tokens(self, text: str) -> int | None:
        return _words(text)

    def complete(self, call: ProviderCall) -> Completion:
        with self._lock:
            self.calls.append(call)
            if self._queue:
                response = self._queue.popleft()
            elif self._respond is not None:
                response = self._respond(call)
            else:
                raise ProviderError(
                    "no queued response",
                    provider=self.kind,
                    model=self.model,
                    fix="call enqueue() or pass respond= before making the call",
                )
        if isinstance(response, Exception):
            raise response
        if isinstance(response, Completion):
            return response
        prompt_words = sum(_words(m.content) for m in call.messages)
        if isinstance(response, str):
            return Completion(
                text=response,
                usage=Usage(prompt_words, _words(response)),
                model=self.model,
                provider=self.kind,
            )
        calls = (response,) if isinstance(response, ToolCall) else response
        return Completion(
            text="",
            usage=Usage(prompt_words, sum(_words(c.arguments) for c in calls)),
            model=self.model,
            provider=self.kind,
            finish_reason="tool_calls",
            tool_calls=calls,
        )

    async def acomplete(self, call: ProviderCall) -> Completion:
        return self.complete(call)

    async def aembed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        """Deterministic toy vectors: letter counts a-z, for plumbing tests."""
        vectors = [[float(t.lower().count(chr(97 + i))) for i in range(26)] for t in texts]
        return vectors, Usage(sum(_words(t) for t in texts), 0)

    async def astream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        completion = self.complete(call)
        words = completion.text.split(" ")
        for index, word in enumerate(words):
            yield StreamChunk(word if index == 0 else " " + word)
        yield StreamChunk("", usage=completion.usage, finish_reason=completion.finish_reason)

    def close(self) -> None:
        pass
