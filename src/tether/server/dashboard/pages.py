"""Rendering: the Jinja2 environment (autoescape on, strict undefined), number filters, and the
headers every dashboard page carries.

The CSP allows no script at all and styles only from the dashboard's own stylesheet: even a
value that escaped escaping could not run.
"""

from __future__ import annotations

import functools
from datetime import datetime
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, Response

from tether.server.dashboard import charts

HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    # same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` on form
    # posts, and sign-in and sign-out check Origin; other sites still get no Referer
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _num(value: float) -> str:
    return f"{value:,}"


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tether.server.dashboard", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.do"],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(usd=charts.usd, ms=charts.ms, pct=charts.pct, num=_num, when=_when)
    return env


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


@functools.cache
def _stylesheet() -> bytes:
    return (files("tether.server.dashboard") / "static" / "dashboard.css").read_bytes()


def stylesheet() -> Response:
    return Response(
        _stylesheet(),
        media_type="text/css",
        headers={"cache-control": "max-age=300", "x-content-type-options": "nosniff"},
    )
