"""Liveness and readiness.

`/healthz` answers from memory: the process is up, with the request log's counters.
`/readyz` says whether this replica can serve requests, which is not whether the database
answers: keys are checked from memory and the request log spools to disk, so a database
outage degrades a replica without stopping it. Answering 503 then would make an orchestrator
pull every replica at once. 503 means requests cannot be served: no keys were ever loaded (the
database has been down since start), or the spool is full and rows are being dropped.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.responses import Response

from tether.errors import DatabaseUnavailable
from tether.server.gateway import Gateway
from tether.store.offload import in_thread

router = APIRouter()

PROBE_TIMEOUT_S = 2.0
JSON = "application/json"


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


@router.get("/healthz")
async def healthz(request: Request) -> Response:
    body = {"status": "ok", "log": _gateway(request).log.stats()}
    return Response(orjson.dumps(body), media_type=JSON)


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    gateway = _gateway(request)
    database = await _probe(gateway)
    spool_full = gateway.log.spool.full
    # Keys load within one refresh of the database answering, so "not loaded" means it has
    # not answered since this process started.
    ready = gateway.keys.loaded and not spool_full
    degraded = database != "ok" or not gateway.log.database_ok or not gateway.keys.loaded
    age = gateway.keys.age_s()
    body: dict[str, Any] = {
        "status": "unavailable" if not ready else "degraded" if degraded else "ok",
        "database": database,
        "keys": "loaded" if gateway.keys.loaded else "not loaded",
        "keys_age_s": round(age, 3) if age is not None else None,
        "log_spooling": not gateway.log.database_ok,
        "spool_full": spool_full,
        "log": gateway.log.stats(),
    }
    return Response(orjson.dumps(body), status_code=200 if ready else 503, media_type=JSON)


async def _probe(gateway: Gateway) -> str:
    def ping() -> None:
        with gateway.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await in_thread(ping, what="readiness probe", timeout_s=PROBE_TIMEOUT_S)
    except DatabaseUnavailable:
        return "unavailable"
    return "ok"
