"""The attack tests run against the same live gateway as the server tests."""

from tests.server.conftest import live

__all__ = ["live"]
