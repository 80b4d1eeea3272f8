"""Local, in-process models through llama.cpp, with llguidance-constrained JSON output.

The model loads on first use (never at import or construction). One model instance serves one
generation at a time; the async API runs it in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tether.contracts.instructions import schema_instruction
from tether.errors import (
    ContextWindowExceeded,
    ModelFileError,
    ProviderError,
    SchemaProblem,
    no_embeddings,
)
from tether.messages import (
    Completion,
    Message,
    ProviderCall,
    StreamChunk,
    TokenLogprob,
    Usage,
)
from tether.providers.base import SAMPLING_PARAMS, Capabilities, SchemaSupport
from tether.providers.gguf_file import BUNDLED_MODELS, ModelFile, bundled_model_file, verify
from tether.providers.grammar import (
    ENFORCED_KEYWORDS,
    GrammarConstraint,
    GrammarError,
    compile_json_schema,
    compile_lark,
)
from tether.providers.local_sampling import LogitBias, LogprobRecorder, sampling_options
from tether.providers.local_tools import (
    made_up,
    offered,
    read_calls,
    text_grammar,
    tool_grammar,
    untagged,
)
from tether.providers.tokenizers import PromptCount, Tokenizer, added_instruction
from tether.settings import ModelSettings, Settings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from llama_cpp import Llama, LogitsProcessorList
    from llguidance import LLTokenizer

    from tether.providers.prompt_format import (
        ChatTemplateFormat,
        RenderedPrompt,
        TranscriptFormat,
    )

DEFAULT_CONTEXT_WINDOW = 4096
CAPABILITIES = Capabilities(
    supports_grammar=True,
    supports_tools=True,
    sampling_params=SAMPLING_PARAMS,
    can_stream=True,
    context_window=DEFAULT_CONTEXT_WINDOW,
    schema=SchemaSupport(enforced=ENFORCED_KEYWORDS),
)


class LlamaCppProvider:
    kind = "llamacpp"

    def __init__(
        self,
        model_file: ModelFile | None,
        *,
        model: str,
        cache_dir: Path,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        threads: int | None = None,
        capabilities: Capabilities = CAPABILITIES,
    ) -> None:
        self.model = model
        self.capabilities = capabilities
        self._file = model_file
        self._cache_dir = cache_dir
        self._context_window = context_window
        self._threads = threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._llm: Llama | None = None
        self._format: ChatTemplateFormat | TranscriptFormat | None = None
        self._tokenizer: LLTokenizer | None = None

    @classmethod
    def from_settings(cls, name: str, model: ModelSettings, settings: Settings) -> LlamaCppProvider:
        window = model.context_window or DEFAULT_CONTEXT_WINDOW
        return cls(
            ModelFile(model.path, model.sha256) if model.path else None,
            model=model.upstream_model or name,
            cache_dir=settings.cache_dir,
            context_window=window,
            threads=model.threads,
            capabilities=replace(
                CAPABILITIES.overridden(model.capabilities), context_window=window
            ),
        )

    def schema_problems(self, schema: Mapping[str, Any]) -> list[SchemaProblem]:
        try:
            compile_json_schema(schema)
        except GrammarError as exc:
            return [SchemaProblem("schema", "", f"llguidance cannot compile it: {exc}")]
        return []

    def count_tokens(self, text: str) -> int | None:
        return self._count_text(text)

    def count_prompt(self, call: ProviderCall) -> PromptCount:
        """Exact: the prompt rendered and tokenized as a call renders and tokenizes it."""
        with self._lock:
            llm, prompt_format = self._load()
            sent = with_schema_instruction(call)
            _, tokens = _tokenized(llm, prompt_format, sent, call)
        from tether.providers.prompt_format import ChatTemplateFormat

        templated = isinstance(prompt_format, ChatTemplateFormat)
        return PromptCount(
            total=len(tokens),
            exact=True,
            tokenizer=Tokenizer(f"{self.model} (GGUF vocabulary)", True, self._count_text),
            sent=tuple(sent),
            instruction=added_instruction(call, sent),
            framing="chat template" if templated else "transcript framing (BOS, Input:/Output:)",
        )

    def tokenize(self, data: bytes) -> list[int]:
        """Token ids of `data` in the model's vocabulary (what `logit_bias` keys name)."""
        with self._lock:
            llm, _ = self._load()
            return llm.tokenize(data, add_bos=False, special=True)

    def _count_text(self, text: str) -> int:
        with self._lock:
            llm, _ = self._load()
            return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # -- calls --------------------------------------------------------------------------------

    def complete(self, call: ProviderCall) -> Completion:
        tools = offered(call.tools)
        with self._lock:
            raw, finish, logprobs, ready = self._generate(call)
            sampled = ready.counter.sampled
            calls = read_calls(raw, tools, call.output) if tools is not None else ()
            if (
                calls
                and tools is not None
                and untagged(raw)
                and made_up(calls, tools, call.messages)
            ):
                # A reflex call the conversation does not support: answer in text instead, from
                # a prompt without the tools (which draw the model back to calling one).
                raw, finish, logprobs, ready = self._generate(
                    replace(call, tools=None), text_only=True
                )
                sampled += ready.counter.sampled
                calls = ()
        if calls:
            text, finish = "", "length" if finish == "length" else "tool_calls"
        else:
            text = raw if call.output is not None else raw.strip()
        return Completion(
            text=text,
            usage=Usage(len(ready.prompt_tokens), sampled),
            model=self.model,
            provider=self.kind,
            finish_reason=finish,
            tool_calls=calls,
            logprobs=logprobs,
        )

    def _generate(
        self, call: ProviderCall, *, text_only: bool = False
    ) -> tuple[str, str, tuple[TokenLogprob, ...] | None, Prepared]:
        """One generation: its text, finish reason and logprobs. Holds no lock: callers do."""
        ready = self._prepare(call, text_only=text_only)
        llm, constraint = ready.llm, ready.constraint
        out = llm.create_completion(ready.prompt_tokens, **ready.options)
        choice = out["choices"][0]  # type: ignore[index]
        raw, finish = choice["text"], choice["finish_reason"] or "stop"
        logprobs = (
            ready.recorder.entries(raw, lambda b: llm.tokenize(b, add_bos=False, special=True))
            if ready.recorder is not None
            else None
        )
        if constraint is not None and constraint.error:
            raise ProviderError(
                f"grammar rejected a token: {constraint.error}",
                provider=self.kind,
                model=self.model,
            )
        return raw, finish, logprobs, ready

    async def acomplete(self, call: ProviderCall) -> Completion:
        return await asyncio.to_thread(self.complete, call)

    async def astream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        """Tokens as llama.cpp produces them, handed from its worker thread to the loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamChunk | BaseException | None] = asyncio.Queue()

        def produce() -> None:
            try:
                for chunk in self._stream(call):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except BaseException as exc:  # handed over and re-raised in the loop
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        worker = loop.run_in_executor(None, produce)
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
        await worker

    async def aembed(self, texts: list[str]) -> tuple[list[list[float]], Usage]:
        raise no_embeddings(self.kind, self.model)

    def _stream(self, call: ProviderCall) -> Iterator[StreamChunk]:
        with self._lock:
            ready = self._prepare(call)
            llm, prompt_tokens, options, counter = (
                ready.llm,
                ready.prompt_tokens,
                ready.options,
                ready.counter,
            )
            finish = "stop"
            # A chunk is not a token: one may hold several (a character split across tokens),
            # the last holds none, and tokens that formed a stop sequence are never sent.
            chunks = cast(
                Iterator[dict[str, Any]],
                llm.create_completion(prompt_tokens, stream=True, **options),
            )
            for out in chunks:
                choice = out["choices"][0]
                finish = choice["finish_reason"] or finish
                if choice["text"]:
                    yield StreamChunk(choice["text"])
        usage = Usage(len(prompt_tokens), counter.sampled)
        yield StreamChunk("", usage=usage, finish_reason=finish)

    def _prepare(self, call: ProviderCall, *, text_only: bool = False) -> Prepared:
        """Render, count and check the prompt; build the generation options (`text_only`: under
        a grammar for text that cannot open like a tool call). Holds no lock: callers do."""
        llm, prompt_format = self._load()
        rendered, prompt_tokens = _tokenized(
            llm, prompt_format, with_schema_instruction(call), call
        )
        if len(prompt_tokens) + call.params.max_tokens > self._context_window:
            raise ContextWindowExceeded(
                provider=self.kind,
                model=self.model,
                prompt_tokens=len(prompt_tokens),
                max_tokens=call.params.max_tokens,
                context_window=self._context_window,
            )
        constraint = (
            GrammarConstraint(self._llg_tokenizer(), compile_lark(text_grammar()))
            if text_only
            else self._constraint(call)
        )
        counter = TokenCounter()
        params = call.params
        bias = LogitBias(params.logit_bias, llm.n_vocab()) if params.logit_bias else None
        recorder = (
            LogprobRecorder(params.top_logprobs or 0, lambda t: _token_bytes(llm, t))
            if params.logprobs
            else None
        )
        options: dict[str, Any] = {
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "seed": params.seed,
            # Under a grammar the model ends by emitting EOS when the value is complete.
            "stop": list(params.stop) if constraint else [*rendered.stop, *params.stop],
            "logits_processor": _processors(bias, constraint, counter, recorder),
            **sampling_options(params),
        }
        return Prepared(llm, prompt_tokens, options, constraint, counter, recorder)

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None

    # -- internals ----------------------------------------------------------------------------

    def _constraint(self, call: ProviderCall) -> GrammarConstraint | None:
        """The grammar for this call: its tool calls (or the answer it may give instead), else
        its contract's schema, else none (free text)."""
        tools = offered(call.tools)
        if tools is None and call.output is None:
            return None
        try:
            if tools is not None:
                assert self._llm is not None
                llm = self._llm
                lark = tool_grammar(
                    tools, call.output, lambda b: llm.tokenize(b, add_bos=False, special=True)
                )
                grammar = compile_lark(lark)
            else:
                assert call.output is not None
                grammar = compile_json_schema(_answer_schema(call.output.schema))
        except GrammarError as exc:  # normally caught by pre-flight before any call
            raise ProviderError(
                f"llguidance cannot compile the schema: {exc}", provider=self.kind, model=self.model
            ) from None
        return GrammarConstraint(self._llg_tokenizer(), grammar)

    def _load(self) -> tuple[Llama, ChatTemplateFormat | TranscriptFormat]:
        if self._llm is not None and self._format is not None:
            return self._llm, self._format
        from llama_cpp import Llama

        from tether.providers.llama_logs import route_llama_logs
        from tether.providers.prompt_format import ChatTemplateFormat, TranscriptFormat

        path = verify(self._model_file(), model=self.model)
        route_llama_logs()
        try:
            llm = Llama(
                model_path=str(path),
                n_ctx=self._context_window,
                n_threads=self._threads,
                verbose=False,
            )
        except ValueError as exc:  # llama.cpp refuses files it cannot parse
            raise ModelFileError(
                f"llama.cpp cannot load it: {exc}",
                provider=self.kind,
                model=self.model,
                path=str(path),
                fix="point `path` at a valid GGUF file",
            ) from None
        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            self._format = ChatTemplateFormat(
                template,
                eos_token=_token_text(llm, llm.token_eos()),
                bos_token=_token_text(llm, llm.token_bos()),
            )
        else:
            self._format = TranscriptFormat()
        self._llm = llm
        return llm, self._format

    def _model_file(self) -> ModelFile:
        """The configured `path`, else the bundled model named by `upstream_model`."""
        if self._file is not None:
            return self._file
        bundled = bundled_model_file(self.model, self._cache_dir)
        if bundled is None:
            raise ModelFileError(
                f"no GGUF file for {self.model!r}: `path` is unset and no bundled model has "
                "that name",
                provider=self.kind,
                model=self.model,
                path="",
                fix="set `path` to a GGUF file, or `upstream_model` to a bundled model: "
                + ", ".join(sorted(BUNDLED_MODELS)),
            )
        return bundled

    def _llg_tokenizer(self) -> LLTokenizer:
        if self._tokenizer is None:
            import llama_cpp
            from llguidance.llamacpp import lltokenizer_from_vocab

            assert self._llm is not None
            vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
            with warnings.catch_warnings():
                # llguidance reads each vocabulary entry through a llama.cpp call that warns
                # of its deprecation once per token (262k warnings for Gemma).
                warnings.simplefilter("ignore", DeprecationWarning)
                self._tokenizer = lltokenizer_from_vocab(vocab)
        return self._tokenizer


def _tokenized(
    llm: Llama,
    prompt_format: ChatTemplateFormat | TranscriptFormat,
    messages: list[Message],
    call: ProviderCall,
) -> tuple[RenderedPrompt, list[int]]:
    """The prompt text and its tokens (BOS included), as llama.cpp is given them."""
    rendered = prompt_format.render(messages, call.tools)
    return rendered, llm.tokenize(rendered.text.encode("utf-8"), special=True)


def _token_text(llm: Llama, token: int) -> str:
    if token < 0:
        return ""
    return llm.detokenize([token], special=True).decode("utf-8", errors="replace")


class TokenCounter:
    """A pass-through logits processor. llama.cpp runs it once per token it samples, so it
    counts the tokens generated, streamed or not: those that formed a stop sequence and a final
    end-of-generation token included (llama.cpp's own server counts the latter too)."""

    def __init__(self) -> None:
        self.sampled = 0

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        self.sampled += 1
        return scores


@dataclass(frozen=True)
class Prepared:
    """A call ready to generate: the prompt's tokens, llama.cpp's options and the processors
    that are read back afterwards."""

    llm: Llama
    prompt_tokens: list[int]
    options: dict[str, Any]
    constraint: GrammarConstraint | None
    counter: TokenCounter
    recorder: LogprobRecorder | None


def _processors(
    bias: LogitBias | None,
    constraint: GrammarConstraint | None,
    counter: TokenCounter,
    recorder: LogprobRecorder | None,
) -> LogitsProcessorList:
    """In order: the caller's bias, the grammar's mask, then the readers (the token counter,
    and logprobs of the distribution the token is sampled from)."""
    from llama_cpp import LogitsProcessorList

    return LogitsProcessorList([p for p in (bias, constraint, counter, recorder) if p is not None])


def _token_bytes(llm: Llama, token: int) -> bytes:
    return llm.detokenize([token], special=True)


# JSON mode: an object with something in it (an empty one meets {"type": "object"} but answers
# nothing; a small model under a bare object grammar often closes it at once).
_JSON_MODE = {"type": "object", "minProperties": 1}


def _answer_schema(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    return _JSON_MODE if dict(schema) == {"type": "object"} else schema


def with_schema_instruction(call: ProviderCall) -> list[Message]:
    """Zero-shot structured calls get the schema spelled out: the grammar keeps the output valid,
    but only the prompt tells the model what the fields mean. Few-shot prompts already show it.
    The choice is made on the prompt alone, so a repair turn (whose failed output is an
    assistant message) carries the same instruction as the first attempt."""
    messages = list(call.messages)
    if call.output is not None and not any(m.role == "assistant" for m in call.prompt):
        if dict(call.output.schema) == {"type": "object"}:
            messages.insert(0, Message("system", JSON_MODE_INSTRUCTION))
        else:
            messages.insert(0, schema_instruction(call.output))
    return messages


JSON_MODE_INSTRUCTION = (
    "Answer in JSON: reply with one JSON object whose keys name the parts of your answer and "
    "whose values give them, and no other text."
)
