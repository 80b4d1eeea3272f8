"""The alerts page: the latest alerts the rules raised (time, rule, prompt version, signal, the
value against the threshold, the message and what each sink did), optionally of one rule or
prompt. Admins only; the query runs in a worker thread; every value is escaped by the
template."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from tether.server.dashboard.access import admitted, denied, gateway_of
from tether.server.dashboard.pages import render
from tether.store.alerts import AlertRow, recent_alerts

router = APIRouter()

LIMIT = 200  # alerts shown, newest first
MAX_FILTER = 200  # characters of a filter value kept


@dataclass(frozen=True)
class Outcome:
    sink: str
    ok: bool
    detail: str  # tries, status or error


@dataclass(frozen=True)
class AlertLine:
    alert: AlertRow
    outcomes: list[Outcome]

    @property
    def pending(self) -> bool:
        """Stored, not yet delivered (or the deliveries were never recorded)."""
        return not self.outcomes


def outcomes(delivered: Mapping[str, Any]) -> list[Outcome]:
    found = []
    for sink, raw in sorted(delivered.items()):
        data = raw if isinstance(raw, dict) else {}
        parts = [f"{data.get('attempts', '?')} tries"]
        if data.get("status") is not None:
            parts.append(f"HTTP {data['status']}")
        error = data.get("error")
        if error and not data.get("ok") and str(error) not in parts:
            parts.append(str(error))
        found.append(Outcome(str(sink), bool(data.get("ok")), ", ".join(parts)))
    return found


def filters(params: Mapping[str, str]) -> dict[str, str]:
    """`rule` and `prompt` query parameters (blank ones dropped)."""
    return {
        name: params[name].strip()[:MAX_FILTER]
        for name in ("rule", "prompt")
        if params.get(name, "").strip()
    }


def alert_lines(engine: Engine, chosen: Mapping[str, str]) -> list[AlertLine]:
    rows = recent_alerts(engine, limit=LIMIT, rule=chosen.get("rule"), prompt=chosen.get("prompt"))
    return [AlertLine(row, outcomes(row.delivered)) for row in rows]


async def _read(read: Callable[[], list[AlertLine]]) -> list[AlertLine] | Response:
    try:
        return await anyio.to_thread.run_sync(read)
    except SQLAlchemyError:
        return render("message.html", 503, title="Database unavailable",
                      text="The database did not answer; try again in a moment.")  # fmt: skip


@router.get("/alerts")
async def alerts_page(request: Request) -> Response:
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    chosen = filters(request.query_params)
    lines = await _read(partial(alert_lines, gateway.engine, chosen))
    if isinstance(lines, Response):
        return lines
    return render("alerts.html", page="alerts", lines=lines, chosen=chosen, limit=LIMIT)
