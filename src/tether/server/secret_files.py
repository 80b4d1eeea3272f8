"""Secrets kept in files of the data directory (the admin token, the demo key): created once,
owner-only from the first byte, never followed through a symlink, refused when others can
read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tether.errors import ConfigError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a planted symlink must not choose the secret


def create_exclusive(path: Path, secret: str, *, replace: bool = False) -> bool:
    """Write `secret` to a new owner-only file; False when the file exists (and `replace` is
    not set). A replacement is written beside it and renamed over it, so a crash never leaves
    a half-written secret."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = path.with_name(path.name + ".new") if replace else path
    if replace:
        target.unlink(missing_ok=True)
    try:
        # O_EXCL: the file is new and ours, born owner-only (no window with wider permissions)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    if replace:
        target.replace(path)
    return True


def read_owner_only(path: Path, *, what: str, delete_to: str) -> str:
    """The secret in `path`; ConfigError when it cannot be read or others could read it."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    except OSError as exc:
        raise ConfigError(
            f"cannot read the {what} file: {exc.strerror}",
            file=str(path),
            field=None,
            fix=f"make it a regular file readable by this user, or delete it to {delete_to}",
        ) from None
    with os.fdopen(fd, encoding="utf-8") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"the {what} file is open to group or others (mode {mode & 0o777:o})",
                file=str(path),
                field=None,
                fix=f"chmod 600 {path}, or delete it to {delete_to}",
            )
        return handle.read().strip()
