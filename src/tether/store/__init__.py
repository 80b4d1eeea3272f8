"""The database: one SQLAlchemy engine per URL (SQLite by default, PostgreSQL by URL), tables,
and numbered migrations recorded in the database itself."""

from tether.store.engine import open_database

__all__ = ["open_database"]
