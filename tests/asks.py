"""Requests for tests that drive the pipeline directly: a virtual key, a chat Ask, and a run
handed to an observer the way the record stage hands it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tether import Client
from tether.messages import Message
from tether.pipeline.context import Ask, Context
from tether.pipeline.stages.record import Observer
from tether.server.keys import ApiKey


def api_key(ident: str) -> ApiKey:
    """A key with no limits, named and identified by `ident`."""
    return ApiKey(ident, ident, "tk-", (), (), None, None, None, datetime.now(UTC), None)


def chat(text: str, **fields: Any) -> Ask:
    return Ask("chat.completions", messages=(Message("user", text),), **fields)


def observed(client: Client, observer: Observer, ask: Ask) -> Context:
    """The pipeline for `ask`, then `observer` on it as the record stage would call it,
    whether the request failed or not."""
    ctx = Context(ask)
    try:
        asyncio.run(client.runtime.pipeline.run(ctx))
    except Exception:
        assert ctx.error is not None
    observer.observe(ctx)
    return ctx
