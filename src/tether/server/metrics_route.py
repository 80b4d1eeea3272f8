"""`GET /metrics`: the runtime's Prometheus metrics (tether.observe.metrics), for admins.

A scrape needs the admin token, as every admin route does (tether.server.auth):

    scrape_configs:
      - job_name: tether
        authorization: {credentials_file: /path/to/admin_token}
        static_configs: [{targets: ["gateway.internal:8000"]}]

Label values hold prompt names, model names and key ids: nothing for anonymous readers.
Answers 404 when the runtime keeps no metrics (they are off in the settings). The background
writers' queues and losses (signal worker, request log) come with them, read at scrape time.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tether.observe.metrics import worker_exposition
from tether.server.auth import AdminAuth
from tether.server.gateway import Gateway

router = APIRouter()


class Exposition(Protocol):
    @property
    def content_type(self) -> str: ...

    def render(self) -> bytes: ...


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus metrics of finished requests (text format); the admin token is required."""
    auth: AdminAuth = request.app.state.auth
    auth.require(request)
    gateway: Gateway = request.app.state.gateway
    found: Exposition | None = getattr(gateway.runtime, "metrics", None)
    if found is None:
        raise HTTPException(404, "metrics are off in this gateway's settings")
    runtime = gateway.runtime
    # A few hundred series render in well under a millisecond, and the writers' stats() are
    # counters in memory: no thread needed.
    body = found.render() + worker_exposition(runtime.signal_worker, runtime.opened_log)
    return Response(body, media_type=found.content_type)
