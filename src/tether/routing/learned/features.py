"""Cheap text features the learned router reads beside the sentence vector.

Each says something about how hard a request is that a topic vector misses: how long it is, how
many numbers it carries (arithmetic chains), how many questions and steps it asks for. Counts go
through log1p so one huge request does not dominate the scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SENTENCE = re.compile(r"[.!?](?:\s|$)")
_OPERATOR = re.compile(r"[+\-*/=%^×÷]")
_QUESTION_WORDS = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "calculate",
        "compute",
        "find",
        "solve",
        "prove",
        "explain",
    ]
)
_STEP_WORDS = frozenset(
    ["then", "after", "each", "every", "per", "total", "remaining", "twice", "half", "times"]
)

FEATURE_NAMES: tuple[str, ...] = (
    "log_chars",
    "log_words",
    "log_numbers",
    "log_distinct_numbers",
    "digit_share",
    "log_sentences",
    "question_marks",
    "question_words",
    "step_words",
    "operators",
    "mean_word_length",
    "log_lines",
    "uppercase_share",
)


def text_features(texts: Sequence[str]) -> NDArray[np.float32]:
    """One row of len(FEATURE_NAMES) values per text."""
    out = np.zeros((len(texts), len(FEATURE_NAMES)), dtype=np.float32)
    for row, text in enumerate(texts):
        out[row] = _features(text)
    return out


def _features(text: str) -> list[float]:
    words = _WORD.findall(text)
    lowered = [w.lower() for w in words]
    numbers = _NUMBER.findall(text)
    chars = max(len(text), 1)
    letters = sum(c.isalpha() for c in text) or 1
    return [
        math.log1p(len(text)),
        math.log1p(len(words)),
        math.log1p(len(numbers)),
        math.log1p(len(set(numbers))),
        sum(c.isdigit() for c in text) / chars,
        math.log1p(len(_SENTENCE.findall(text))),
        math.log1p(text.count("?")),
        math.log1p(sum(w in _QUESTION_WORDS for w in lowered)),
        math.log1p(sum(w in _STEP_WORDS for w in lowered)),
        math.log1p(len(_OPERATOR.findall(text))),
        sum(map(len, words)) / max(len(words), 1),
        math.log1p(text.count("\n")),
        sum(c.isupper() for c in text) / letters,
    ]
