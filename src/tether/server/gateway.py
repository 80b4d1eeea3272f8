"""The gateway's state: the client, keys, limits and the request log, plus the one place that
turns a finished (or failed) call into a request log row."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from tether.client import Client
from tether.costs.accounting import charged, failed_attempt
from tether.errors import ContractViolation, InvalidKey, KeyScopeError, ProviderError, TetherError
from tether.messages import Message, Usage
from tether.observe.request_log import RequestLog, RequestRecord
from tether.providers.openai_wire import wire_messages
from tether.result import Attempt, Result
from tether.server.errors import REQUEST_ID_HEADER
from tether.server.keys import ApiKey, KeyStore
from tether.server.limits import Limiter, Quota
from tether.settings import PriceSettings, Settings
from tether.store.engine import open_database


def new_request_id() -> str:
    # time-ordered prefix, then randomness: ids sort by arrival and never collide
    return f"req_{time.time_ns():x}{secrets.token_hex(6)}"


def _messages_json(messages: tuple[Message, ...]) -> str:
    """As sent in OpenAI's format (tool calls and results included), content always text."""
    wire = wire_messages(messages)
    rows = [{**w, "content": m.content} for m, w in zip(messages, wire, strict=True)]
    return json.dumps(rows, ensure_ascii=False)


def _attempts_json(attempts: tuple[Attempt, ...]) -> str:
    return json.dumps(
        [
            {
                "raw": a.raw,
                "errors": list(a.errors),
                "input_tokens": a.usage.input_tokens,
                "cached_input_tokens": a.usage.cached_input_tokens,
                "cache_write_tokens": a.usage.cache_write_tokens,
                "output_tokens": a.usage.output_tokens,
                "cost_usd": a.cost_usd,
                "latency_ms": round(a.latency_s * 1000, 3),
                "finish_reason": a.finish_reason,
            }
            for a in attempts
        ],
        ensure_ascii=False,
    )


@dataclass
class CallRecord:
    """What one gateway call knows about itself by the time it is recorded."""

    request_id: str
    endpoint: str
    key: ApiKey | None
    started: float
    stream: bool = False
    model: str | None = None
    messages: tuple[Message, ...] = ()
    contract: str | None = None
    prompt: str | None = None
    prompt_version: str | None = None
    recorded: bool = False  # set once its row is queued: every call gets exactly one
    quota: Quota | None = None  # the key's rate limits after this call was admitted
    admin: bool = False  # made with the admin token rather than a virtual key

    def headers(self, **extra: str) -> dict[str, str]:
        """Response headers every answer to this call carries: its id and the key's limits."""
        out = {REQUEST_ID_HEADER: self.request_id, **extra}
        if self.quota is not None:
            out.update(self.quota.headers())
        return out


class Gateway:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.client = client or Client(settings)
        engine = open_database(settings.database)
        self.engine = engine
        self.keys = KeyStore(engine)
        self.limiter = Limiter(self.keys.spent())
        self.log = RequestLog(
            engine,
            spool_dir=settings.data_dir / "spool",
            spool_max_bytes=settings.server.spool_max_mb * 1024 * 1024,
            retention_days=settings.server.log_retention_days,
        )

    def start(self) -> None:
        self.keys.start()  # keys are checked from memory: no request waits on the database
        self.log.start()
        # Build every provider now: their imports would otherwise block the event loop on the
        # first request (models themselves still load on first use).
        self.client.models()

    def close(self) -> None:
        self.keys.close()
        self.log.close()
        self.client.close()
        self.engine.dispose()

    # -- access -------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> ApiKey | None:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if not header:
            if self.settings.server.require_keys:
                raise InvalidKey("missing API key")
            return None
        if scheme.lower() != "bearer" or not secret:
            raise InvalidKey("the Authorization header must be `Bearer <key>`")
        return self.keys.verify(secret.strip())

    def check_prompt_scope(self, key: ApiKey | None, prompt: str) -> None:
        if key is not None and not key.allows_prompt(prompt):
            raise KeyScopeError("prompt", prompt)

    def admit(self, call: CallRecord, *, model: str | None, prompt: str | None = None) -> None:
        """Scopes, then rate limits and budget; what is left of the limits goes on the call."""
        key = call.key
        if key is None:
            return
        model_name = model or self.settings.default_model
        if prompt is not None:
            self.check_prompt_scope(key, prompt)
        if not key.allows_model(model_name, via_prompt=prompt is not None):
            raise KeyScopeError("model", model_name)
        call.quota = self.limiter.admit(key)

    # -- recording ----------------------------------------------------------------------------

    def record_result(self, call: CallRecord, result: Result[Any], output: Any) -> None:
        usage = result.usage
        if call.key is not None:
            self.limiter.charge(call.key, usage.total_tokens, result.cost_usd)
        self._record(
            call,
            status=200,
            error=None,
            provider=result.provider,
            upstream_model=result.model,
            response=result.raw,
            output=json.dumps(output, ensure_ascii=False) if call.contract else None,
            valid=True if call.contract else None,
            attempts=_attempts_json(result.attempts),
            usage=usage,
            cost=result.cost_usd,
        )

    def record_unchecked(
        self, call: CallRecord, text: str, usage: Usage, cost: float, provider: str, model: str
    ) -> None:
        """A call without a contract: a streamed free-text completion or embeddings."""
        if call.key is not None:
            self.limiter.charge(call.key, usage.total_tokens, cost)
        self._record(
            call,
            status=200,
            error=None,
            provider=provider,
            upstream_model=model,
            response=text,
            output=None,
            valid=None,
            attempts=None,
            usage=usage,
            cost=cost,
        )

    def record_outcome(
        self, call: CallRecord, status: int, error: str | None, *, partial: str | None = None
    ) -> None:
        """A call without a completion or a TetherError to describe it: an unexpected error, a
        client that went away, a call that used no model (feedback). `partial` is what was
        sent before it ended."""
        self._record(
            call,
            status=status,
            error=error,
            provider=None,
            upstream_model=None,
            response=partial,
            output=None,
            valid=None,  # no output was judged
            attempts=None,
            usage=Usage(),
            cost=0.0,
        )

    def record_error(
        self,
        call: CallRecord,
        exc: TetherError,
        status: int,
        *,
        partial: str | None = None,
        price: PriceSettings | None = None,
    ) -> None:
        """A call that failed. Every attempt the error carries was billed upstream: the row and
        the key's spend include them. A stream that failed outside the attempt loop carries no
        attempts; what its provider reported billing is charged at `price`."""
        done = exc.attempts
        if not done and price is not None and isinstance(exc, ProviderError) and exc.usage:
            latency = time.perf_counter() - call.started
            done = (failed_attempt(exc, price, latency_s=latency, raw=partial or ""),)
        usage, cost = charged(done)
        if done and call.key is not None:
            self.limiter.charge(call.key, usage.total_tokens, cost)
        response = partial if partial is not None else ((done[-1].raw or None) if done else None)
        attempts = _attempts_json(done) if done else None
        self._record(
            call,
            status=status,
            error=exc.message,
            provider=None,
            upstream_model=None,
            response=response,
            output=None,
            # invalid only when an output failed its contract: a 429 judged no output
            valid=False if isinstance(exc, ContractViolation) else None,
            attempts=attempts,
            usage=usage,
            cost=cost,
        )

    def _record(
        self,
        call: CallRecord,
        *,
        status: int,
        error: str | None,
        provider: str | None,
        upstream_model: str | None,
        response: str | None,
        output: str | None,
        valid: bool | None,
        attempts: str | None,
        usage: Usage,
        cost: float,
    ) -> None:
        if call.recorded:
            return
        call.recorded = True
        self.log.record(
            RequestRecord(
                id=call.request_id,
                at=datetime.now(UTC),
                endpoint=call.endpoint,
                key_id=call.key.id if call.key else None,
                model=call.model,
                provider=provider,
                upstream_model=upstream_model,
                prompt=call.prompt,
                prompt_version=call.prompt_version,
                status=status,
                error=error,
                stream=call.stream,
                messages=_messages_json(call.messages),
                response=response,
                output=output,
                contract=call.contract,
                valid=valid,
                attempts=attempts,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=cost,
                latency_ms=round((time.perf_counter() - call.started) * 1000, 3),
            )
        )
