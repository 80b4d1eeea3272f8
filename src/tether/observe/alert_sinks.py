"""Where a fired alert goes: the log, or a webhook (a JSON POST with a timeout and a bounded
number of retries). A sink never raises: it returns what happened, which is stored with the
alert. Blocking: sinks run in worker threads, never on the event loop.

Neither the webhook's URL (it may carry a token) nor its bearer token is ever logged or stored;
a failure is described by its status code or the exception's type. The HTTP library logs each
request's URL (httpx2 at INFO, httpcore2 at DEBUG): its records are dropped while a webhook is
being delivered, and a sink's traceback is logged with both secrets redacted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx2

from tether.observe.alert_rules import AlertSettings, LogSink, WebhookSink
from tether.redact import redact
from tether.store.alerts import AlertRow

logger = logging.getLogger("tether.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_RETRIED_STATUS = frozenset({408, 425, 429})  # plus every 5xx
# The loggers that write a request's URL or host: a filter on a logger sees only its own
# records, so each one is named.
HTTP_LOGGERS = ("httpx2", "httpcore2.connection", "httpcore2.http11", "httpcore2.http2",
                "httpcore2.proxy", "httpcore2.socks")  # fmt: skip


class _QuietWhileDelivering(logging.Filter):
    """Drops the HTTP library's records in a thread that is delivering a webhook; other
    requests (providers, the caller's own) are logged as before."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    @contextmanager
    def active(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self._local, "depth", 0)


_quiet = _QuietWhileDelivering()
for _name in HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_quiet)


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    status: int | None = None  # the last HTTP status, if any
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class AlertSink(Protocol):
    name: str

    def send(self, alert: AlertRow) -> Delivery: ...


def url_secrets(url: str) -> list[str]:
    """The forms a webhook URL may take in a message: as configured, as the HTTP library
    writes it, and its path with the query (where a token usually sits)."""
    found = [url]
    try:
        parsed = httpx2.URL(url)
    except Exception:  # an unparsable URL only appears as configured
        return found
    found.append(str(parsed))
    target = parsed.raw_path.decode("ascii", "replace")
    if target not in ("", "/"):
        found.append(target)
    if parsed.userinfo:
        found.append(parsed.userinfo.decode("ascii", "replace"))
    # Longest first: a shorter form inside a longer one must not leave the rest behind.
    return sorted(set(found), key=len, reverse=True)


def payload(alert: AlertRow) -> dict[str, Any]:
    """The JSON a webhook receives."""
    body = alert.to_json()
    body.pop("delivered", None)
    return {"kind": "tether.alert", **body}


class LogAlertSink:
    def __init__(self, settings: LogSink) -> None:
        self.name = settings.name
        self._level = _LEVELS[settings.level]

    def send(self, alert: AlertRow) -> Delivery:
        where = alert.prompt or "(no prompt)"
        if alert.version:
            where += f"@{alert.version}"
        logger.log(self._level, "alert %s on %s: %s", alert.rule, where, alert.message)
        return Delivery(ok=True, attempts=1)


class WebhookAlertSink:
    def __init__(
        self,
        settings: WebhookSink,
        *,
        environ: Mapping[str, str] | None = None,
        client: httpx2.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._environ = os.environ if environ is None else environ
        self._client = client
        self._sleep = sleep

    @property
    def secrets(self) -> list[str]:
        """What no log line may show: the URL's forms and the bearer token."""
        variable = self._settings.token_env
        token = self._environ.get(variable, "") if variable else ""
        return [*url_secrets(self._settings.url), *([token] if token else [])]

    def _headers(self) -> tuple[dict[str, str], str | None]:
        headers = {"content-type": "application/json", "user-agent": "tether-alerts"}
        variable = self._settings.token_env
        if variable is None:
            return headers, None
        token = self._environ.get(variable)
        if not token:
            return headers, f"environment variable {variable} is not set (the bearer token)"
        headers["authorization"] = f"Bearer {token}"
        return headers, None

    def send(self, alert: AlertRow) -> Delivery:
        headers, problem = self._headers()
        if problem is not None:
            return Delivery(ok=False, attempts=0, error=problem)
        with _quiet.active():
            return self._post(alert, headers)

    def _post(self, alert: AlertRow, headers: dict[str, str]) -> Delivery:
        settings = self._settings
        client = self._client or httpx2.Client(timeout=settings.timeout_s, follow_redirects=False)
        status: int | None = None
        error: str | None = None
        tries = 0
        try:
            for tries in range(1, settings.retries + 2):
                if tries > 1:
                    self._sleep(settings.backoff_s * 2 ** (tries - 2))
                try:
                    response = client.post(
                        settings.url,
                        json=payload(alert),
                        headers=headers,
                        timeout=settings.timeout_s,
                    )
                except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
                    # The type only: the library's message may quote the URL.
                    status, error = None, type(exc).__name__
                    continue
                status = response.status_code
                if response.is_success:
                    return Delivery(ok=True, attempts=tries, status=status)
                error = f"HTTP {status}"
                if status < 500 and status not in _RETRIED_STATUS:
                    break  # the receiver refused this alert; sending it again changes nothing
        finally:
            if self._client is None:
                client.close()
        logger.warning("alert %s: webhook %s failed after %d tries (%s)",
                       alert.rule, self.name, tries, error)  # fmt: skip
        return Delivery(ok=False, attempts=tries, status=status, error=error)


def build_sinks(settings: AlertSettings) -> dict[str, AlertSink]:
    sinks: dict[str, AlertSink] = {}
    for sink in settings.sinks:
        sinks[sink.name] = (
            LogAlertSink(sink) if isinstance(sink, LogSink) else WebhookAlertSink(sink)
        )
    return sinks


def deliver(
    sinks: Mapping[str, AlertSink], alert: AlertRow, names: Sequence[str] | None
) -> dict[str, dict[str, Any]]:
    """Send `alert` to the named sinks (None: every one); each sink's outcome by name."""
    outcomes: dict[str, dict[str, Any]] = {}
    for name in names if names is not None else list(sinks):
        sink = sinks.get(name)
        if sink is None:
            outcomes[name] = Delivery(ok=False, attempts=0, error="no such sink").to_json()
            continue
        try:
            outcomes[name] = sink.send(alert).to_json()
        except Exception as exc:  # a sink's bug must not stop the others or the caller
            trace = redact("".join(traceback.format_exception(exc)), getattr(sink, "secrets", ()))
            logger.error("alert %s: sink %s raised\n%s", alert.rule, name, trace)
            outcomes[name] = Delivery(ok=False, attempts=1, error=type(exc).__name__).to_json()
    return outcomes
