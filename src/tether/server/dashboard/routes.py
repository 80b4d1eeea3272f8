"""The dashboard's pages: overview, request log, one request, prompts, costs. Admins only.

Every database read runs in a worker thread, so a slow query never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import Response

from tether.server.dashboard import access, alerts, charts, costs, reviews
from tether.server.dashboard.access import admitted, denied, gateway_of
from tether.server.dashboard.filters import parse_filters
from tether.server.dashboard.overview import WINDOW_DAYS, Overview, overview
from tether.server.dashboard.pages import render, stylesheet
from tether.server.dashboard.prompts import list_prompts
from tether.server.dashboard.request_log import PAGE_SIZE, list_requests, request_detail

router = APIRouter(prefix="/dashboard")
router.include_router(access.router)
router.include_router(alerts.router)
router.include_router(reviews.router)

T = TypeVar("T")


async def _read(read: Callable[[], T]) -> T | Response:
    """`read()` in a worker thread, or the 503 page when the database does not answer."""
    try:
        return await anyio.to_thread.run_sync(read)
    except SQLAlchemyError:
        return render("message.html", 503, title="Database unavailable",
                      text="The database did not answer; try again in a moment.")  # fmt: skip


def _charts(data: Overview) -> list[charts.Chart]:
    days = [d.day for d in data.days]
    return [
        charts.bar_chart(
            "Cost per day", "cost (USD)", days, [d.cost_usd for d in data.days], charts.usd
        ),
        charts.line_chart(
            "Conformity per day",
            "valid outputs",
            days,
            [("valid share", [d.conformity for d in data.days])],
            charts.pct,
            upper=1.0,
        ),
        charts.line_chart(
            "Latency per day",
            "latency",
            days,
            [("p50", [d.p50_ms for d in data.days]), ("p95", [d.p95_ms for d in data.days])],
            charts.ms,
        ),
    ]


@router.get("")
async def overview_page(request: Request) -> Response:
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    today = datetime.now(UTC).date()
    data = await _read(partial(overview, gateway.engine, today))
    if isinstance(data, Response):
        return data
    return render(
        "overview.html", page="overview", data=data, charts=_charts(data), window=WINDOW_DAYS
    )


@router.get("/requests")
async def requests_page(request: Request) -> Response:
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    filters, errors = parse_filters(request.query_params)
    found = await _read(partial(list_requests, gateway.engine, filters))
    if isinstance(found, Response):
        return found
    return render(
        "requests.html",
        page="requests",
        filters=filters,
        errors=errors,
        found=found,
        page_size=PAGE_SIZE,
    )


@router.get("/requests/{request_id}")
async def request_page(request_id: str, request: Request) -> Response:
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    detail = await _read(partial(request_detail, gateway.engine, request_id))
    if isinstance(detail, Response):
        return detail
    if detail is None:
        return render("message.html", 404, title="Request not found",
                      text=f"No request with id {request_id!r} in the log.")  # fmt: skip
    return render("request.html", page="requests", d=detail)


@router.get("/prompts")
async def prompts_page(request: Request) -> Response:
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    prompts = await _read(partial(list_prompts, gateway.engine))
    if isinstance(prompts, Response):
        return prompts
    return render("prompts.html", page="prompts", prompts=prompts)


@router.get("/costs")
async def costs_page(request: Request) -> Response:
    gateway = gateway_of(request)
    if not admitted(request):
        return denied(request)
    period, errors = costs.parse_period(request.query_params)
    today = datetime.now(UTC).date()
    page = await _read(partial(costs.costs_page, gateway.engine, today, period))
    if isinstance(page, Response):
        return page
    return render("costs.html", page="costs", data=page, errors=errors,
                  chart=costs.daily_chart(page), periods=costs.PERIODS)  # fmt: skip


@router.get("/static/dashboard.css")
async def css() -> Response:
    return stylesheet()
