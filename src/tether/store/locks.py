"""Write transactions that run one at a time per key, on SQLite and on PostgreSQL.

A read that decides a write (the version a label had, the step a rollback returns to) is only
right if nobody else writes between the two, so such transactions take their lock before
their first statement:

- SQLite: pysqlite (in its default, legacy mode) sends BEGIN only before the first INSERT or
  UPDATE, so the reads before it run outside any transaction and `SELECT ... FOR UPDATE` is
  not even SQL there. Each serialized transaction opens with `BEGIN IMMEDIATE` from
  SQLAlchemy's `begin` hook instead (its documented pysqlite recipe), which takes the
  database's write lock up front; pysqlite never adds a BEGIN of its own inside an open
  transaction, and it still commits and rolls back. The hook sits on a derived engine, so
  every other transaction on the shared pool keeps the driver's usual behaviour. SQLite locks
  the whole file: the key plays no part. A writer in another process waits for the lock as
  long as the engine's busy timeout allows.
- PostgreSQL: a transaction-scoped advisory lock on a hash of the key, released at commit or
  rollback. Unlike `SELECT ... FOR UPDATE` it also covers a row that does not exist yet.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, event, func, select

from tether.store.dialect import is_postgresql, is_sqlite


class SerialWriter:
    """`transaction(key)`: a transaction that no other `transaction(key)` overlaps."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        if is_sqlite(engine):
            self._engine = engine.execution_options(tether_serial_writer=True)
            event.listen(self._engine, "begin", _begin_immediate)

    @contextmanager
    def transaction(self, key: str) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            if is_postgresql(conn):
                conn.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
            yield conn


def _begin_immediate(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
