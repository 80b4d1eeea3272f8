"""Database work from async code: it runs in a worker thread with a deadline, so a stalled
database costs the caller a 503 and never holds the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import SQLAlchemyError

from tether.errors import DatabaseUnavailable
from tether.store.engine import LOCK_WAIT_S
from tether.store.failures import is_bad_value, short_reason

T = TypeVar("T")
log = logging.getLogger("tether.store")

# Longer than the drivers' own lock waits, so a lock usually ends in the driver's clean error
# (nothing half-done) and this deadline only catches what no driver timeout covers.
DEADLINE_S = LOCK_WAIT_S + 2.0


async def in_thread(work: Callable[[], T], *, what: str, timeout_s: float = DEADLINE_S) -> T:
    """`work()` in a worker thread; DatabaseUnavailable when it stalls or cannot connect."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(work), timeout_s)
    except TimeoutError:
        log.warning("%s: no answer from the database within %g s", what, timeout_s)
        raise DatabaseUnavailable(what, f"no answer within {timeout_s:g} s") from None
    except SQLAlchemyError as exc:
        if is_bad_value(exc):
            raise
        # The driver's message names hosts and ports: it goes to the log, not to the caller.
        log.warning("%s: database unavailable: %s", what, short_reason(exc))
        raise DatabaseUnavailable(what, "the database did not answer") from None
