"""Cache backends by name: a new backend is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import cast

from tether.cache.backends.base import CacheBackend
from tether.cache.config import CacheSettings

LOCAL_FILE = "response-cache.sqlite"


def _local(settings: CacheSettings, data_dir: Path) -> CacheBackend:
    from tether.cache.backends.local import LocalBackend

    return LocalBackend(settings.path or data_dir / LOCAL_FILE, max_entries=settings.max_entries)


def _redis(settings: CacheSettings, data_dir: Path) -> CacheBackend:
    module = import_module("tether.cache.backends.redis")
    opener = cast(Callable[[CacheSettings], CacheBackend], module.open_redis_backend)
    return opener(settings)


BACKENDS: dict[str, Callable[[CacheSettings, Path], CacheBackend]] = {
    "local": _local,
    "redis": _redis,
}


def open_backend(settings: CacheSettings, data_dir: Path) -> CacheBackend:
    return BACKENDS[settings.backend](settings, data_dir)
