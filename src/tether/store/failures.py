"""Telling a database outage from a row the database refuses.

An outage passes: the same statement succeeds once the server answers again, so the work is
kept and retried. A refused value never passes: retrying it only blocks whatever comes after.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError


def is_bad_value(exc: BaseException) -> bool:
    """True when the statement failed because of the values it carried."""
    if isinstance(exc, DBAPIError):
        return not exc.connection_invalidated and isinstance(exc, DataError | IntegrityError)
    if isinstance(exc, StatementError):
        return True  # a bind processor refused a value before anything was sent
    # A str the driver cannot encode (a lone surrogate) fails before it reaches SQLAlchemy.
    return isinstance(exc, ValueError | TypeError)


def short_reason(exc: BaseException) -> str:
    """The first line of the driver's message, for the server's own log."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
