"""Who may see the dashboard: admins, as `Gateway.is_admin` decides (loopback clients when no
admin token is set; otherwise the token, as a bearer header or the `tether_admin` cookie).

With a token set, /dashboard/login takes it in a form and stores it in an HttpOnly,
SameSite=Strict cookie scoped to /dashboard. Everyone else gets a 403 page.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from tether.server.dashboard.pages import HEADERS, render
from tether.server.gateway import Gateway

router = APIRouter()

COOKIE = "tether_admin"
COOKIE_PATH = "/dashboard"
COOKIE_MAX_AGE_S = 12 * 3600
MAX_FORM_BYTES = 8 * 1024
HOME = "/dashboard"


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def admitted(request: Request, gateway: Gateway) -> bool:
    try:
        return gateway.is_admin(request)
    except TypeError:
        # secrets.compare_digest refuses non-ASCII text: such a credential is simply wrong
        return False


def safe_next(value: str) -> str:
    """`value` when it is a path inside the dashboard, else the dashboard's home: a login
    never redirects off the site."""
    parts = urlsplit(value)
    inside = parts.path == HOME or parts.path.startswith(HOME + "/")
    clean = all(0x20 < ord(ch) < 0x7F and ch != "\\" for ch in value)
    if parts.scheme or parts.netloc or not inside or not clean:
        return HOME
    return value


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def denied(request: Request, gateway: Gateway, *, error: str | None = None) -> Response:
    """The 403 page; it holds the login form when an admin token is configured."""
    return render(
        "login.html",
        403,
        can_login=gateway.settings.server.admin_token is not None,
        next=safe_next(_here(request)),
        error=error,
    )


@router.get("/login")
async def login_form(request: Request) -> Response:
    gateway = gateway_of(request)
    target = safe_next(request.query_params.get("next", HOME))
    if admitted(request, gateway):
        return RedirectResponse(target, 303, headers=HEADERS)
    if gateway.settings.server.admin_token is None:
        return denied(request, gateway)
    return render("login.html", can_login=True, next=target, error=None)


async def _form(request: Request) -> dict[str, str]:
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items() if values}


@router.post("/login")
async def login(request: Request) -> Response:
    gateway = gateway_of(request)
    token = gateway.settings.server.admin_token
    if token is None:
        return denied(request, gateway)
    form = await _form(request)
    target = safe_next(form.get("next", HOME))
    presented = form.get("token", "").strip().encode("utf-8")
    if not secrets.compare_digest(presented, token.get_secret_value().encode("utf-8")):
        return render("login.html", 403, can_login=True, next=target, error="wrong token")
    response = RedirectResponse(target, 303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        token.get_secret_value(),
        max_age=COOKIE_MAX_AGE_S,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse(f"{HOME}/login", 303, headers=HEADERS)
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response
