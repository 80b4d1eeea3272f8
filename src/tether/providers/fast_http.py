"""A lean async transport for OpenAI-compatible chat completions: aiohttp plus orjson.

Why not the SDK here: measured on this project's machines, an httpx-based async client adds
most of a gateway's overhead and degrades under concurrency, while aiohttp with orjson stays
flat (see the gateway benchmark). The SDK keeps serving the sync path, streaming, embeddings
and any caller that injects its own HTTP client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from tether.errors import ProviderError, ProviderRejected, ProviderUnavailable
from tether.providers.retry_after import retry_after
from tether.providers.sdk_errors import fix_for
from tether.redact import redact


class FastChatTransport:
    """POST /chat/completions with one pooled aiohttp session per event loop."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        provider: str,
        model: str,
        key_env: str | None,
        timeout_s: float,
    ) -> None:
        self._base_url = base_url
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {
            "authorization": f"Bearer {api_key}",
            "content-type": "application/json",
            "accept": "application/json",
        }
        self._secret = api_key
        self._provider = provider
        self._model = model
        self._key_env = key_env
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sessions: dict[int, tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        found = self._sessions.get(id(loop))
        if found is not None and found[0] is loop and not found[1].closed:
            return found[1]
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, json_serialize=_dumps
        )
        self._sessions[id(loop)] = (loop, session)
        return session

    async def create(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """One call; a fault raises (the request pipeline decides whether to retry, when, and
        on which model)."""
        body = orjson.dumps(arguments)
        try:
            async with self._session().post(self._url, data=body, headers=self._headers) as answer:
                payload = await answer.read()
                if answer.status >= 400:
                    rejected = self._rejected(answer.status, payload)
                    rejected.retry_after_s = retry_after(answer.headers.get("retry-after"))
                    raise rejected
                parsed: dict[str, Any] = orjson.loads(payload)
                return parsed
        except (TimeoutError, aiohttp.ClientConnectionError) as exc:
            reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else "connection failed"
            raise ProviderUnavailable(
                provider=self._provider, model=self._model, url=self._base_url, reason=reason
            ) from None
        except orjson.JSONDecodeError:
            raise ProviderError(
                "the server answered with invalid JSON", provider=self._provider, model=self._model
            ) from None

    def _rejected(self, status: int, payload: bytes) -> ProviderRejected:
        try:
            error = orjson.loads(payload).get("error") or {}
            message = str(error.get("message") if isinstance(error, dict) else error)
        except (orjson.JSONDecodeError, AttributeError):
            message = payload[:200].decode("utf-8", errors="replace")
        return ProviderRejected(
            provider=self._provider,
            model=self._model,
            status=status,
            reason=redact(message, [self._secret]),
            fix=fix_for(status, key_env=self._key_env, model=self._model),
        )

    def close(self) -> None:
        """Close every pooled connection, from sync code, whatever state each loop is in."""
        for loop, session in self._sessions.values():
            if session.closed:
                continue
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(session.close(), loop)
            elif not loop.is_closed():
                loop.run_until_complete(session.close())
            elif session.connector is not None:
                # The loop is gone: drop the transports directly (nothing left to await on).
                session.connector._close()
        self._sessions.clear()


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
