"""Liveness and readiness."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    gateway = request.app.state.gateway
    try:
        with gateway.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError:
        database = "unavailable"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "log_pending": gateway.log.pending,
        "log_spooling": not gateway.log.database_ok,
        "log_dropped": gateway.log.dropped,
    }
    return Response(
        orjson.dumps(body),
        status_code=200 if database == "ok" else 503,
        media_type="application/json",
    )
