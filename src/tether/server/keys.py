"""Virtual API keys: created once (the secret is shown once), stored as a sha256 hash, scoped to
models and prompts, with request and token rate limits, a money budget and an optional expiry.

Keys have 256 bits of randomness, so a plain sha256 is the right hash (a slow password hash
would only add latency to every request).

Verification never touches the database. The store keeps every key in memory, by hash, and a
background thread reloads the whole table every REFRESH_S; once loaded, that copy is
authoritative. The table has one row per issued key (hundreds, not millions), so reloading it
whole is cheap, and in exchange a request needs no database work at all: a database stall
cannot delay it, and random keys are refused from memory, never reaching the database. A
revocation or a key created on another replica takes effect here within one refresh; one made
through this store takes effect at once. While the database is down the last copy is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row
from sqlalchemy.exc import SQLAlchemyError

from tether.costs.limits.base import Period
from tether.errors import DatabaseUnavailable, InvalidKey, InvalidRequest, KeyNotFound
from tether.server.key_fields import check_key_fields
from tether.store import keys as stored
from tether.store.dialect import utc
from tether.store.failures import short_reason

KEY_PREFIX = "tk-"
REFRESH_S = 0.5
log = logging.getLogger("tether.keys")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    models: tuple[str, ...]
    prompts: tuple[str, ...]
    rpm: int | None
    tpm: int | None
    budget_usd: float | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None
    budget_period: Period = "total"  # when budget_usd starts afresh (calendar, UTC)

    def allows_model(self, model: str, *, via_prompt: bool = False) -> bool:
        """A key scoped to prompts only may reach models through those prompts, not raw chat."""
        if self.models:
            return model in self.models
        return via_prompt or not self.prompts

    def allows_prompt(self, prompt: str) -> bool:
        return not self.prompts or prompt in self.prompts

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def public(self) -> dict[str, Any]:
        """What the admin API and the dashboard may show: never the secret or its hash."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "models": list(self.models),
            "prompts": list(self.prompts),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "budget_usd": self.budget_usd,
            "budget_period": self.budget_period,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }


_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` (one number, one unit); ValueError otherwise."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None or int(found[1]) == 0:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m, 2w or 45s")
    return timedelta(**{_UNITS[found[2]]: int(found[1])})


def parse_expiry(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 time with a timezone, in the future; ValueError (saying why) otherwise."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time like 2027-01-31T00:00:00Z") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone; add one, e.g. Z or +02:00")
    if when <= (now or datetime.now(UTC)):
        raise ValueError(f"{text!r} is in the past; an expiry must be in the future")
    return when.astimezone(UTC)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _period(stored: str | None) -> Period:
    # NULL: a key made before migration 4, whose budget never started afresh.
    return "day" if stored == "day" else "month" if stored == "month" else "total"


def _key(row: Row[Any]) -> ApiKey:
    created = _utc(row.created_at)
    assert created is not None
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        models=tuple(json.loads(row.models)),
        prompts=tuple(json.loads(row.prompts)),
        rpm=row.rpm,
        tpm=row.tpm,
        budget_usd=row.budget_usd,
        created_at=created,
        revoked_at=_utc(row.revoked_at),
        expires_at=_utc(row.expires_at),
        budget_period=_period(row.budget_period),
    )


class KeyStore:
    def __init__(self, engine: Engine, *, refresh_s: float = REFRESH_S) -> None:
        self._engine = engine
        self._refresh_s = refresh_s
        # Replaced whole, never mutated, so readers need no lock; None until the first load.
        self._by_hash: dict[str, ApiKey] | None = None
        self._loaded_at: float | None = None
        self._writes = 0  # local changes, so a reload that raced one is not applied
        self._answering = True
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the cache ----------------------------------------------------------------------------

    def start(self) -> None:
        """Load every key now (if the database answers), then keep reloading in the background."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tether-key-cache", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    @property
    def loaded(self) -> bool:
        return self._by_hash is not None

    def age_s(self) -> float | None:
        """Seconds since the last successful load; None before the first."""
        return None if self._loaded_at is None else time.monotonic() - self._loaded_at

    def refresh(self) -> bool:
        """Reload every key from the database; False (copy kept) when it does not answer."""
        with self._lock:
            writes = self._writes
        try:
            rows = stored.all_keys(self._engine)
        except SQLAlchemyError as exc:
            if self._answering:  # once per outage, not twice a second
                reason = short_reason(exc)
                log.warning("key cache: database unavailable, keeping the last copy: %s", reason)
            self._answering = False
            return False
        if not self._answering:
            log.warning("key cache: database back")
        self._answering = True
        fresh = {row.secret_hash: _key(row) for row in rows}
        with self._lock:
            if writes == self._writes:  # else it may predate a local change: the next one wins
                self._by_hash = fresh
                self._loaded_at = time.monotonic()
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            try:
                self.refresh()
            except Exception:
                log.exception("key cache: refresh failed")  # a bug must not stop the refresh

    def _remember(self, secret_hash: str, key: ApiKey) -> None:
        with self._lock:
            self._writes += 1
            if self._by_hash is not None:
                self._by_hash = {**self._by_hash, secret_hash: key}

    # -- keys ---------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        models: list[str] | None = None,
        prompts: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
        expires_at: datetime | None = None,
        budget_period: str = "total",
    ) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again."""
        check_key_fields(
            name,
            models=models,
            prompts=prompts,
            rpm=rpm,
            tpm=tpm,
            budget_usd=budget_usd,
            budget_period=budget_period,
        )
        if expires_at is not None and expires_at.tzinfo is None:
            raise InvalidRequest("`expires_at` must carry a timezone", param="expires_at")
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        digest = _hash(secret)
        row = {
            "id": key_id,
            "name": name,
            "secret_hash": digest,
            "prefix": secret[:10],
            "models": json.dumps(models or []),
            "prompts": json.dumps(prompts or []),
            "rpm": rpm,
            "tpm": tpm,
            "budget_usd": budget_usd,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
            "expires_at": expires_at,
            "budget_period": budget_period,
        }
        stored.add_key(self._engine, row)
        key = self.get(key_id)
        self._remember(digest, key)
        return key, secret

    def get(self, key_id: str) -> ApiKey:
        return _key(self._row(key_id))

    def _row(self, key_id: str) -> Row[Any]:
        row = stored.key_row(self._engine, key_id)
        if row is None:
            raise KeyNotFound(key_id)
        return row

    def list(self) -> list[ApiKey]:
        return [_key(r) for r in stored.keys_oldest_first(self._engine)]

    def revoke(self, key_id: str) -> ApiKey:
        stored.revoke_key(self._engine, key_id, datetime.now(UTC))
        row = self._row(key_id)  # raises KeyNotFound when it does not exist
        key = _key(row)
        self._remember(row.secret_hash, key)
        return key

    def verify(self, secret: str) -> ApiKey:
        """The active key for a presented secret, or InvalidKey; from memory only."""
        if not secret.startswith(KEY_PREFIX):
            raise InvalidKey("malformed API key")
        known = self._by_hash
        if known is None and self._thread is None:
            self.refresh()  # a store used without start() (a script, the CLI): load on demand
            known = self._by_hash
        if known is None:
            raise DatabaseUnavailable("key store", "the keys have not been loaded yet")
        found = known.get(_hash(secret))
        if found is None:
            raise InvalidKey("unknown API key")
        if found.revoked_at is not None:
            raise InvalidKey("this API key was revoked")
        if found.expired(datetime.now(UTC)):
            assert found.expires_at is not None
            raise InvalidKey(f"this API key expired at {found.expires_at.isoformat()}")
        return found

    def spent(self) -> dict[str, float]:
        """Money spent per key, from the request log."""
        return stored.spent_by_key(self._engine)
