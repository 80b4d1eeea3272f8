"""llama.cpp's own log lines go to Python logging (logger `llama.cpp`), never straight to the
terminal: llama-cpp-python's handler prints some lines to stderr even when it is told to be
quiet (those llama.cpp logs at level NONE), which litters CLI output."""

from __future__ import annotations

import ctypes
import logging

import llama_cpp

log = logging.getLogger("llama.cpp")

# ggml_log_level: NONE 0, INFO 1, WARN 2, ERROR 3, DEBUG 4, CONT 5 (continues the last line)
_LEVELS = {
    0: logging.DEBUG,
    1: logging.DEBUG,
    2: logging.INFO,
    3: logging.WARNING,
    4: logging.DEBUG,
}


@llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]  # ctypes CFUNCTYPE
def _to_logging(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
    line = text.decode("utf-8", errors="replace").rstrip()
    if line:
        log.log(_LEVELS.get(level, logging.DEBUG), "%s", line)


_installed = False


def route_llama_logs() -> None:
    """Install the handler (once per process; the callback object must stay referenced)."""
    global _installed
    if not _installed:
        # Shown only where the application configures logging: Python's last-resort handler
        # would otherwise print llama.cpp's warnings (it reports routine choices as errors).
        log.addHandler(logging.NullHandler())
        llama_cpp.llama_log_set(_to_logging, ctypes.c_void_p(0))
        _installed = True
