"""Run Python code in a new interpreter: what a module imports or loads, seen from a clean start."""

from __future__ import annotations

import subprocess
import sys


def fresh_python(code: str, *, timeout: float) -> str:
    """The code's standard output (stripped); a failure raises CalledProcessError."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=timeout
    )
    return done.stdout.strip()
