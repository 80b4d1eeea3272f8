"""The admin token `tether serve` keeps when settings name none: `<data_dir>/admin_token`,
random, readable by its owner only, made once and reused on every later start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from tether.errors import ConfigError
from tether.server.secret_files import create_exclusive, read_owner_only

TOKEN_FILE = "admin_token"


@dataclass(frozen=True)
class StoredToken:
    value: SecretStr
    path: Path
    created: bool  # made by this call: the only time it may be shown


def load_or_create(data_dir: Path) -> StoredToken:
    """The token in `data_dir`'s admin_token file, made first when there is none."""
    path = data_dir / TOKEN_FILE
    token = secrets.token_urlsafe(32)
    if create_exclusive(path, token):
        return StoredToken(SecretStr(token), path, created=True)
    return StoredToken(_read(path), path, created=False)


def _read(path: Path) -> SecretStr:
    token = read_owner_only(path, what="admin token", delete_to="get a new token")
    if len(token) < 16:
        raise ConfigError(
            "the admin token file holds no usable token (16 characters or more)",
            file=str(path),
            field=None,
            fix="delete it to get a new token",
        )
    return SecretStr(token)
