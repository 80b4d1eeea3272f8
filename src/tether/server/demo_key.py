"""The demo key `tether serve --demo` hands out: created once, kept owner-only in the data
directory, and reused on every later start so that a restart never breaks a snippet someone
already copied."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.errors import InvalidKey
from tether.server.keys import KeyStore
from tether.server.secret_files import create_exclusive, read_owner_only

DEMO_KEY_FILE = "demo_key"
DEMO_KEY_NAME = "demo"


@dataclass(frozen=True)
class DemoKey:
    secret: str
    path: Path
    created: bool  # made by this call: the only time it is printed


def demo_key(keys: KeyStore, data_dir: Path) -> DemoKey:
    """The stored demo key when it still works; else a new one, stored in its place."""
    path = data_dir / DEMO_KEY_FILE
    if path.exists():
        secret = read_owner_only(path, what="demo key", delete_to="get a new demo key")
        try:
            keys.verify(secret)
        except InvalidKey:
            pass  # revoked, expired or from another database: make a new one
        else:
            return DemoKey(secret, path, created=False)
    _, secret = keys.create(DEMO_KEY_NAME)
    create_exclusive(path, secret, replace=True)
    return DemoKey(secret, path, created=True)
