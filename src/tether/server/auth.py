"""Who is an admin, and which requests the gateway serves at all.

Admin access always needs a credential: the admin token as `Authorization: Bearer`, or a
dashboard session opened with it. Nothing else is trusted: not a loopback address (behind a
reverse proxy on the same host every client arrives from loopback), not a header, not a host name.

    AdminAuth       the admin checks: credential, Origin, JSON bodies; sessions; throttling
    Sessions        random session ids mapped server-side to expiries (the cookie holds only the id)
    LoginThrottle   failed admin credentials per client address and overall, in a sliding window
    TrustedHosts    pure ASGI middleware: every request's Host must be a served name

Sessions and the throttle live in the process: a restart signs everyone out, and each replica
counts failures on its own.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from fastapi import Request
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.errors import AdminRequired, CrossOrigin, InvalidRequest, LoginThrottled, UntrustedHost
from tether.server.errors import error_response
from tether.settings import ServerSettings

Clock = Callable[[], float]

COOKIE = "tether_session"
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
SET_TOKEN_FIX = (
    "set TETHER_ADMIN_TOKEN or [server] admin_token in tether.toml (16 characters or more), or "
    "start the gateway with `tether serve`, which keeps a generated token in the data "
    "directory's admin_token file"
)
SEND_TOKEN_FIX = (
    "send `Authorization: Bearer <admin token>`: the value of TETHER_ADMIN_TOKEN, "
    "[server] admin_token, or the admin_token file in the data directory"
)


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).digest()


class Sessions:
    """Dashboard sessions: a random id per sign-in, mapped to its expiry.

    Only a hash of each id is kept, so lookups by a guessed id leak no timing about real ones.
    At most `limit` live at once; past it the oldest ends (only admins can open one).
    """

    def __init__(self, ttl_s: float, *, limit: int = 1000, clock: Clock = time.monotonic):
        self.ttl_s = ttl_s
        self._limit = limit
        self._clock = clock
        self._expiry: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            for digest, expiry in list(self._expiry.items()):
                if expiry <= now:
                    del self._expiry[digest]
            while len(self._expiry) >= self._limit:
                # dicts keep insertion order, and every session lives as long: first ends first
                del self._expiry[next(iter(self._expiry))]
            self._expiry[_digest(session_id)] = now + self.ttl_s
        return session_id

    def valid(self, session_id: str) -> bool:
        expiry = self._expiry.get(_digest(session_id))
        return expiry is not None and expiry > self._clock()

    def close(self, session_id: str) -> None:
        with self._lock:
            self._expiry.pop(_digest(session_id), None)


class LoginThrottle:
    """At most `per_client` failed admin credentials per client address, and `overall` from all
    clients together, within any `window_s`. Past either, every try waits, the right token too,
    so guessing gains nothing from speed.

    The overall cap matters: behind a reverse proxy every client shares the proxy's address,
    and a forwarded address is the client's own claim.

    A few deques rather than a rate-limit library: those count requests per key, while this
    counts only failures and must answer before the token is even compared.
    """

    def __init__(
        self,
        *,
        per_client: int = 5,
        overall: int = 50,
        window_s: float = 60.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.per_client = per_client
        self.overall = overall
        self.window_s = window_s
        self._clock = clock
        self._clients: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._all and self._all[0] <= cutoff:
            self._all.popleft()
        for client, times in list(self._clients.items()):
            while times and times[0] <= cutoff:
                times.popleft()
            if not times:
                del self._clients[client]

    def retry_after(self, client: str) -> float | None:
        """Seconds until `client` may try again, or None when it may try now."""
        now = self._clock()
        waits = [0.0]
        with self._lock:
            self._expire(now)
            for times, cap in ((self._clients.get(client, deque()), self.per_client),
                               (self._all, self.overall)):  # fmt: skip
                if len(times) >= cap:
                    # the count drops below the cap when the cap-th newest failure leaves
                    waits.append(times[-cap] + self.window_s - now)
        return max(waits) or None

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._clients.setdefault(client, deque()).append(now)
            self._all.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_origin(request: Request) -> None:
    """Refuse a state-changing request that carries the session cookie, or names an origin,
    unless Origin (else Referer) is this very host. SameSite=Strict keeps other sites' requests
    cookieless; this also stops other origins of the same site (a sibling subdomain, a port).
    A bearer-token request without either header needs no check: no browser sends it unasked."""
    if request.method in SAFE_METHODS:
        return
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        if COOKIE in request.cookies:
            raise CrossOrigin()
        return
    try:
        netloc = urlsplit(source).netloc
    except ValueError:
        raise CrossOrigin() from None
    if not netloc or netloc.lower() != request.headers.get("host", "").lower():
        raise CrossOrigin()


def check_json_body(request: Request) -> None:
    """Admin bodies are JSON, declared as such: a cross-site form can only send text/plain,
    form-urlencoded or multipart, so it never reaches an admin route."""
    if request.method in SAFE_METHODS:
        return
    headers = request.headers
    has_body = (
        request.method != "DELETE"
        or "transfer-encoding" in headers
        or headers.get("content-length", "0") != "0"
    )
    media = headers.get("content-type", "").partition(";")[0].strip().lower()
    if has_body and media != "application/json":
        raise InvalidRequest(
            "admin routes take only `Content-Type: application/json` bodies",
            status=415,
            fix="send the body as JSON with `Content-Type: application/json`",
        )


class AdminAuth:
    """The admin checks for /admin and /dashboard, with the sessions and throttle they share."""

    def __init__(self, token: SecretStr | None, *, clock: Clock = time.monotonic) -> None:
        self._token = token.get_secret_value().encode("utf-8") if token is not None else None
        self.sessions = Sessions(SESSION_TTL_S, clock=clock)
        self.throttle = LoginThrottle(clock=clock)

    @property
    def configured(self) -> bool:
        return self._token is not None

    def refusal(self) -> AdminRequired:
        if self._token is None:
            return AdminRequired("no admin token is configured: nobody is admin", fix=SET_TOKEN_FIX)
        return AdminRequired("admin access needs the admin token", fix=SEND_TOKEN_FIX)

    def _verify(self, client: str, presented: bytes) -> bool:
        """Whether `presented` is the admin token; throttled per client and overall."""
        if self._token is None or not presented:
            return False
        wait = self.throttle.retry_after(client)
        if wait is not None:
            raise LoginThrottled(retry_after_s=wait)
        if secrets.compare_digest(presented, self._token):
            self.throttle.succeeded(client)
            return True
        self.throttle.failed(client)
        return False

    def admitted(self, request: Request) -> bool:
        """Whether `request` holds an admin credential: a bearer token when it sends an
        Authorization header, else a live session cookie. Raises LoginThrottled."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer":
                return False
            # headers arrive decoded as latin-1: encoding back gives the bytes that were sent
            return self._verify(_client(request), value.strip().encode("latin-1", "replace"))
        session = request.cookies.get(COOKIE)
        return session is not None and self.sessions.valid(session)

    def require(self, request: Request) -> None:
        """Every /admin route: same origin for cookie requests, a credential, JSON bodies."""
        check_origin(request)
        if not self.admitted(request):
            raise self.refusal()
        check_json_body(request)

    def login(self, request: Request, token: str) -> str | None:
        """A new session's id when `token` is the admin token, else None; any session the
        request already held ends (no fixation). Raises LoginThrottled."""
        if not self._verify(_client(request), token.strip().encode("utf-8", "surrogateescape")):
            return None
        self.logout(request)
        return self.sessions.open()

    def logout(self, request: Request) -> None:
        session = request.cookies.get(COOKIE)
        if session is not None:
            self.sessions.close(session)


def host_name(value: str) -> str:
    """A Host header or configured host without port, IPv6 brackets or case:
    `Example.com:8080` → `example.com`, `[::1]:8080` → `::1`."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:  # two or more: a bare IPv6 address, which has no port
        return value.partition(":")[0]
    return value


def trusted_hosts(server: ServerSettings) -> tuple[str, ...]:
    if server.trusted_hosts is not None:
        return server.trusted_hosts
    return (*LOOPBACK_NAMES, server.host)


class TrustedHosts:
    """Pure ASGI middleware: a request whose Host is not a served name gets a 400 before any
    route runs, which defeats DNS rebinding (a hostile name resolving to this gateway).

    Not Starlette's TrustedHostMiddleware: it answers in plain text rather than OpenAI's error
    format, and loops over patterns where this is one set lookup on every request."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        names = frozenset(host_name(h) for h in hosts)
        self._any = "*" in names
        self._names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"host":
                if host_name(value.decode("latin-1")) in self._names:
                    await self.app(scope, receive, send)
                    return
                break
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await error_response(UntrustedHost())(scope, receive, send)
