"""The gateway's state: the runtime it shares with the library (providers, the pipeline, the
request log, the limit store), the virtual keys, and the request context of each call."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import Request

from tether.client import Client
from tether.errors import InvalidKey
from tether.pipeline.context import Ask, CacheUse, Context
from tether.pipeline.stages.record import Record
from tether.runtime import Runtime
from tether.server.errors import REQUEST_ID_HEADER
from tether.server.keys import ApiKey, KeyStore
from tether.settings import Settings

CACHE_HEADER = "x-tether-cache"  # the cache's decision on a response; a caller's wish on a request


class Gateway:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.client = client or Client(runtime=Runtime(settings, log_requests=True))
        self.runtime = self.client.runtime
        self.runtime.always_log()  # every gateway request leaves a row
        self.engine = self.runtime.engine
        self.keys = KeyStore(self.engine)
        self.log = self.runtime.open_log()
        self._record = Record(self.runtime, self.runtime.observers)

    def start(self) -> None:
        self.keys.start()  # keys are checked from memory: no request waits on the database
        # Build every provider now: their imports would otherwise block the event loop on the
        # first request (models themselves still load on first use).
        self.client.models()

    def close(self) -> None:
        self.keys.close()
        self.client.close()

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

    # -- the calls ----------------------------------------------------------------------------

    def begin(self, request: Request, endpoint: str) -> Context:
        """A request context for this HTTP request, before anything about it is known; the
        error handlers record it if the route never hands it to the pipeline."""
        ctx = Context(_bare(endpoint))
        request.state.request_id = ctx.request_id
        request.state.ctx = ctx
        return ctx

    async def run(self, ctx: Context, **ask: Any) -> Context:
        """The pipeline for `ctx`, its Ask completed with the route's fields."""
        ctx.ask = completed(ctx, **ask)
        return await self.runtime.pipeline.run(ctx)

    async def record(self, ctx: Context) -> None:
        """The row of a request that never reached the pipeline (refused, malformed) or did
        not call a model (feedback)."""
        await self._record.finish(ctx)


def completed(ctx: Context, **fields: Any) -> Ask:
    """The Ask with a route's fields, keeping what was known before the body was read."""
    return Ask(ctx.ask.endpoint, key=ctx.ask.key, cache=ctx.ask.cache, **fields)


def cache_use(request: Request) -> CacheUse:
    """What the caller allows the cache: `Cache-Control: no-store` keeps this request out
    of it entirely, `no-cache` asks for a fresh answer (which then replaces the cached one);
    `x-tether-cache: off|refresh` says the same for clients that cannot set Cache-Control."""
    own = request.headers.get(CACHE_HEADER, "").strip().lower()
    if own in ("off", "refresh", "use"):
        return own  # type: ignore[return-value]
    directives = {d.strip().lower() for d in request.headers.get("cache-control", "").split(",")}
    if "no-store" in directives:
        return "off"
    if "no-cache" in directives:
        return "refresh"
    return "use"


@functools.cache
def _bare(endpoint: str) -> Ask:
    """What a request to `endpoint` asks before its body is read (immutable: shared)."""
    return Ask(endpoint)


def headers(ctx: Context, **extra: str) -> dict[str, str]:
    """Response headers every answer to this request carries: its id and the key's limits."""
    out = {REQUEST_ID_HEADER: ctx.request_id, **extra}
    if ctx.cache is not None:
        out[CACHE_HEADER] = ctx.cache.kind
    if ctx.reservation is not None:
        out.update(ctx.reservation.quota.headers())
    return out
