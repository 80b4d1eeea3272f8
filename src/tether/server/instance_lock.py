"""One gateway per data directory: a second `tether serve` on the same data fails at once,
before it touches keys, prompts or the port, instead of fighting the first one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from tether.errors import ConfigError

LOCK_FILE = "gateway.lock"


class InstanceLock:
    """Held from `acquire()` until the process exits (the kernel drops it with the process)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = self.path.open("a+", encoding="ascii")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                f"a tether gateway is already running on this data directory (pid {holder})",
                file=str(self.path),
                field=None,
                fix="stop it first, or give this one its own data_dir (TETHER_DATA_DIR)",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
