"""The admin token `tether serve` keeps when settings name none: `<data_dir>/admin_token`,
random, readable by its owner only, made once and reused on every later start."""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from tether.errors import ConfigError

TOKEN_FILE = "admin_token"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a planted symlink must not choose the token


@dataclass(frozen=True)
class StoredToken:
    value: SecretStr
    path: Path
    created: bool  # made by this call: the only time it may be shown


def load_or_create(data_dir: Path) -> StoredToken:
    """The token in `data_dir`'s admin_token file, made first when there is none."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / TOKEN_FILE
    token = secrets.token_urlsafe(32)
    try:
        # O_EXCL: the file is new and ours, born owner-only (no window with wider permissions)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        return StoredToken(_read(path), path, created=False)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return StoredToken(SecretStr(token), path, created=True)


def _read(path: Path) -> SecretStr:
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the admin token file: {exc.strerror}",
            file=str(path),
            field=None,
            fix="make it a regular file readable by this user, or delete it to get a new token",
        ) from None
    with os.fdopen(fd, encoding="utf-8") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the admin token file is open to group or others (mode {mode & 0o777:o})",
                file=str(path),
                field=None,
                fix=f"chmod 600 {path}, or delete it to get a new token",
            )
        token = handle.read().strip()
    if len(token) < 16:
        raise ConfigError(
            "the admin token file holds no usable token (16 characters or more)",
            file=str(path),
            field=None,
            fix="delete it to get a new token",
        )
    return SecretStr(token)
