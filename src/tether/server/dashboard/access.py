"""Who may see the dashboard: admins, as `AdminAuth` decides (the admin token as a bearer
header, or a session opened with it). Without a configured token nobody is admitted.

/dashboard/login takes the token in a form and opens a server-side session; the cookie holds
only the session's random id (HttpOnly, SameSite=Strict, Path=/dashboard, Secure over https).
Sign-ins are throttled and checked for Origin; everyone else gets a 403 page.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from tether.errors import LoginThrottled
from tether.server.auth import COOKIE, SESSION_TTL_S, AdminAuth, check_origin
from tether.server.dashboard.pages import HEADERS, render
from tether.server.gateway import Gateway

router = APIRouter()

COOKIE_PATH = "/dashboard"
MAX_FORM_BYTES = 8 * 1024
HOME = "/dashboard"


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def auth_of(request: Request) -> AdminAuth:
    auth: AdminAuth = request.app.state.auth
    return auth


def admitted(request: Request) -> bool:
    return auth_of(request).admitted(request)


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


def denied(request: Request, *, error: str | None = None) -> Response:
    """The 403 page; it holds the login form when an admin token is configured."""
    return render(
        "login.html",
        403,
        can_login=auth_of(request).configured,
        next=safe_next(_here(request)),
        error=error,
    )


@router.get("/login")
async def login_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next", HOME))
    if admitted(request):
        return RedirectResponse(target, 303, headers=HEADERS)
    if not auth_of(request).configured:
        return denied(request)
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
    check_origin(request)
    auth = auth_of(request)
    if not auth.configured:
        return denied(request)
    form = await _form(request)
    target = safe_next(form.get("next", HOME))
    try:
        session = auth.login(request, form.get("token", ""))
    except LoginThrottled as exc:
        wait = max(1, round(exc.retry_after_s))
        page = render("login.html", 429, can_login=True, next=target,
                      error=f"too many failed sign-ins; try again in {wait} s")  # fmt: skip
        page.headers["retry-after"] = str(wait)
        return page
    if session is None:
        return render("login.html", 403, can_login=True, next=target, error="wrong token")
    response = RedirectResponse(target, 303, headers=HEADERS)
    response.set_cookie(
        COOKIE,
        session,
        max_age=SESSION_TTL_S,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    check_origin(request)
    auth_of(request).logout(request)
    response = RedirectResponse(f"{HOME}/login", 303, headers=HEADERS)
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )
    return response
