"""Virtual API keys: created once (the secret is shown once), stored as a sha256 hash, scoped to
models and prompts, with request and token rate limits and a money budget.

Keys have 256 bits of randomness, so a plain sha256 is the right hash (a slow password hash
would only add latency to every request); lookups go through an in-process cache that is
refreshed every few seconds so that a revocation reaches every replica quickly.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Row, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from tether.errors import DatabaseUnavailable, InvalidKey, KeyNotFound
from tether.server.key_fields import check_key_fields
from tether.store.tables import api_keys, requests

KEY_PREFIX = "tk-"
CACHE_TTL_S = 5.0


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

    def allows_model(self, model: str, *, via_prompt: bool = False) -> bool:
        """A key scoped to prompts only may reach models through those prompts, not raw chat."""
        if self.models:
            return model in self.models
        return via_prompt or not self.prompts

    def allows_prompt(self, prompt: str) -> bool:
        return not self.prompts or prompt in self.prompts

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
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogatepass")).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


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
    )


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._by_hash: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        *,
        models: list[str] | None = None,
        prompts: list[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: float | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret; the secret is not stored and cannot be shown again."""
        check_key_fields(
            name, models=models, prompts=prompts, rpm=rpm, tpm=tpm, budget_usd=budget_usd
        )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        row = {
            "id": key_id,
            "name": name,
            "secret_hash": _hash(secret),
            "prefix": secret[:10],
            "models": json.dumps(models or []),
            "prompts": json.dumps(prompts or []),
            "rpm": rpm,
            "tpm": tpm,
            "budget_usd": budget_usd,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
        with self._engine.begin() as conn:
            conn.execute(insert(api_keys).values(**row))
        return self.get(key_id), secret

    def get(self, key_id: str) -> ApiKey:
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise KeyNotFound(key_id)
        return _key(row)

    def list(self) -> list[ApiKey]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at))
            return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        if done.rowcount == 0:
            self.get(key_id)  # raises KeyNotFound when it does not exist
        with self._lock:
            self._by_hash.clear()
        return self.get(key_id)

    def verify(self, secret: str) -> ApiKey:
        """The active key for a presented secret, or InvalidKey."""
        if not secret.startswith(KEY_PREFIX):
            raise InvalidKey("malformed API key")
        digest = _hash(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._by_hash.get(digest)
        if cached is None or now - cached[0] > CACHE_TTL_S:
            try:
                with self._engine.connect() as conn:
                    query = select(api_keys).where(api_keys.c.secret_hash == digest)
                    row = conn.execute(query).first()
            except SQLAlchemyError:
                # Database down: keep serving the keys we know (stale beats refusing everyone).
                if cached is None:
                    raise DatabaseUnavailable("key store", "cannot verify the key") from None
            else:
                cached = (now, _key(row) if row else None)
                with self._lock:
                    self._by_hash[digest] = cached
        found = cached[1]
        if found is None:
            raise InvalidKey("unknown API key")
        if found.revoked_at is not None:
            raise InvalidKey("this API key was revoked")
        return found

    def spent(self) -> dict[str, float]:
        """Money spent per key, from the request log."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(requests.c.key_id, func.sum(requests.c.cost_usd))
                .where(requests.c.key_id.is_not(None))
                .group_by(requests.c.key_id)
            )
            return {key_id: float(total or 0.0) for key_id, total in rows}
