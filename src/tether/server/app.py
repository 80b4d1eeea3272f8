"""The FastAPI application: routes, error mapping, and a lifespan that starts the request log
writer and, on shutdown (SIGTERM included), flushes every row before the process exits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from tether.client import Client
from tether.errors import TetherError
from tether.observe.alerts import drift_check_loop, input_embedder
from tether.observe.calibration_error import calibration_check_loop
from tether.observe.canaries import canary_loop
from tether.server import (
    admin_routes,
    cache_routes,
    health,
    metrics_route,
    native_routes,
    openai_routes,
)
from tether.server.api_docs import with_components
from tether.server.auth import AdminAuth, TrustedHosts, trusted_hosts
from tether.server.dashboard import routes as dashboard_routes
from tether.server.errors import handle_http_error, handle_tether_error, handle_unexpected
from tether.server.gateway import Gateway
from tether.settings import Settings


def create_app(settings: Settings | None = None, *, client: Client | None = None) -> FastAPI:
    resolved = settings if settings is not None else Settings.load()
    gateway = Gateway(resolved, client)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway.start()
        alerts = resolved.observe.alerts
        # Scheduled checks: each returns at once when nothing is configured for it.
        embedder = input_embedder(alerts, resolved.observe.evasive_embedder)  # input drift
        checks = [
            asyncio.create_task(drift_check_loop(gateway.engine, alerts, embedder=embedder)),
            asyncio.create_task(canary_loop(gateway.client, alerts)),
            asyncio.create_task(calibration_check_loop(gateway.engine, alerts)),
        ]
        try:
            yield
        finally:
            for check in checks:
                check.cancel()
            gateway.close()

    # The docs page's script and styles ship in the fastapi-offline package: /docs works
    # on a machine without network access.
    app = FastAPIOffline(
        title="tether gateway",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs/static",
    )
    plain_openapi = app.openapi
    app.openapi = lambda: with_components(plain_openapi())  # type: ignore[method-assign]
    app.state.gateway = gateway
    app.state.auth = AdminAuth(resolved.server.admin_token)
    # Outermost: a request for a host this gateway does not serve reaches nothing else.
    app.add_middleware(TrustedHosts, hosts=trusted_hosts(resolved.server))
    app.add_exception_handler(TetherError, handle_tether_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)
    for module in (openai_routes, native_routes, admin_routes, health, dashboard_routes):
        app.include_router(module.router)
    app.include_router(cache_routes.router)
    app.include_router(metrics_route.router)
    return app
