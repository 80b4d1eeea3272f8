"""Keep secrets out of messages that reach logs, errors and pages."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Shapes of provider keys that upstream error messages sometimes echo back, even partially.
_KEY_SHAPES = re.compile(r"\b(?:sk|pk|rk|tk)[-_][A-Za-z0-9_*\-]{6,}|\bBearer\s+\S+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(REDACTED, text)
