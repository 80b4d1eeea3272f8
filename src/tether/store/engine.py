"""Open a database by URL and bring its schema up to date.

Every wait the driver can make is bounded, so a locked table or a dead server costs a worker
thread a few seconds and never holds one forever: SQLite's busy wait, PostgreSQL's connect,
lock and statement timeouts, TCP keepalives, and the wait for a pooled connection.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from tether.errors import ConfigError, DatabaseUnavailable
from tether.store.migrations import migrate

LOCK_WAIT_S = 3.0  # a row or table lock held longer than this fails the statement
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_S = 30  # dashboards aggregate over the log; nothing else comes close
POOL_WAIT_S = 5.0


def open_database(url: str) -> Engine:
    """An engine for `url` (sqlite:///path or postgresql+psycopg://...), migrated."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            str(exc), file=None, field="database_url", fix="use sqlite:///PATH or postgresql://..."
        ) from None
    safe = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_pre_ping=True, **_options(parsed))
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except OperationalError as exc:
        engine.dispose()
        raise DatabaseUnavailable(safe, str(exc.orig).strip().splitlines()[0]) from None
    return engine


def _options(url: URL) -> dict[str, Any]:
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return {"connect_args": {"timeout": LOCK_WAIT_S}}  # busy wait on a locked file
    if backend == "postgresql" and url.get_driver_name() == "psycopg":
        # Query-string options in the URL win, so an operator can still tune any of these.
        session = (
            f"-c lock_timeout={int(LOCK_WAIT_S * 1000)} "
            f"-c statement_timeout={STATEMENT_TIMEOUT_S * 1000}"
        )
        connect_args: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": session,
            # A peer that vanished without a FIN is noticed in ~25 s instead of ~2 hours.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        return {
            "connect_args": {k: v for k, v in connect_args.items() if k not in url.query},
            "pool_timeout": POOL_WAIT_S,
        }
    return {"pool_timeout": POOL_WAIT_S}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
