"""Detectors over answer text, run in the signal worker's thread.

The evasive score (0-1) says how much an answer avoids the question: refusal and hedging
phrases, combined with how close the answer is in meaning to a few generic non-answers.
Lexical diversity says how varied a prompt version's recent answers are: a model stuck
repeating itself shows as distinct n-grams falling over the window.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from typing import TypeVar

import numpy as np

from tether.cache.embedders.base import Embedder, Vectors
from tether.cache.embedders.registry import create_embedder

log = logging.getLogger("tether.signals")
_K = TypeVar("_K")

# (pattern, weight): a refusal alone makes an answer evasive; hedges add up.
_REFUSALS: tuple[tuple[str, float], ...] = (
    (r"\bi (?:can ?not|can't|won't|will not|am unable to|'m unable to) "
     r"(?:help|assist|provide|answer|do that|comply|share|discuss|fulfil)", 1.0),
    (r"\bi(?: am|'m) not (?:able|allowed|permitted|comfortable) to\b", 1.0),
    (r"\bi (?:must|have to) (?:decline|refuse)\b", 1.0),
    (r"\bas an ai\b", 0.8),
    (r"\bas a (?:large )?language model\b", 0.8),
    (r"\bi (?:don't|do not) have (?:access|the ability|real-time|enough information|"
     r"personal (?:opinions|experiences))", 0.8),
    (r"\bi (?:can't|cannot|am unable to) (?:browse|access|see)\b", 0.8),
    (r"\bi(?: am|'m) (?:sorry|afraid),? (?:but )?i\b", 0.6),
    (r"\b(?:unfortunately|regrettably),? i\b", 0.4),
)  # fmt: skip
_HEDGES: tuple[tuple[str, float], ...] = (
    (r"\bit (?:really )?depends\b", 0.5),
    (r"\bthere(?:'s| is) no (?:single|one|simple|easy|definitive|clear) answer\b", 0.5),
    (r"\b(?:i'm|i am) not (?:sure|certain)\b", 0.4),
    (r"\bi (?:don't|do not) know\b", 0.5),
    (r"\b(?:hard|difficult|impossible) to (?:say|tell|know)\b", 0.4),
    (r"\b(?:consult|speak (?:with|to)|talk to) (?:a|an|your) (?:qualified )?"
     r"(?:professional|expert|doctor|lawyer|attorney|specialist|advisor)\b", 0.4),
    (r"\bcould you (?:please )?(?:provide|clarify|give|share) (?:more|some|additional)\b", 0.4),
    (r"\bmany (?:factors|things) (?:to consider|involved)\b", 0.3),
)  # fmt: skip
_PATTERNS = tuple(
    (re.compile(pattern, re.IGNORECASE), weight) for pattern, weight in _REFUSALS + _HEDGES
)
_HEDGE_WORDS = 80  # hedges in answers longer than this count for less (a caveat, not a dodge)
_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'"})

GENERIC_ANSWERS = (
    "I'm sorry, but I can't help with that.",
    "I am unable to assist with that request.",
    "As an AI language model, I cannot provide that information.",
    "I don't have enough information to answer that.",
    "I don't have access to real-time information.",
    "It depends on many factors.",
    "There is no simple answer to this question.",
    "I'm not sure about that.",
    "Could you provide more details about what you are asking?",
    "Please consult a qualified professional for advice.",
)
# cosine to the nearest generic answer: below LOW says nothing, HIGH and above is a full score
SIMILAR_LOW = 0.45
SIMILAR_HIGH = 0.8
_EMBED_CHARS = 1000  # an evasive answer shows in its opening


def pattern_score(text: str) -> float:
    """0-1 from refusal and hedging phrases."""
    plain = text.translate(_QUOTES)
    words = max(len(plain.split()), 1)
    dilution = min(1.0, _HEDGE_WORDS / words)
    score = 0.0
    for pattern, weight in _PATTERNS:
        if pattern.search(plain):
            score += weight if weight >= 0.6 else weight * dilution
    return min(score, 1.0)


class EvasiveDetector:
    """Scores answers 0-1. Without an embedder only the phrases count; an embedder that fails
    to load is reported once and then left out."""

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder
        self._generic: Vectors | None = None
        self._lock = threading.Lock()

    def score(self, text: str) -> float:
        phrases = pattern_score(text)
        if phrases >= 1.0:
            return 1.0  # nothing to add: spare the model
        similar = self._similarity_score(text)
        # either evidence alone can make an answer evasive; together they reinforce
        return round(1.0 - (1.0 - phrases) * (1.0 - similar), 4)

    def similarity(self, text: str) -> float | None:
        """Cosine to the nearest generic answer (None without an embedder)."""
        generic = self._generic_vectors()
        if generic is None or self._embedder is None or not text.strip():
            return None
        try:
            vector = self._embedder.embed([text[:_EMBED_CHARS]])[0]
        except Exception:
            self._disable()
            return None
        return float(np.max(generic @ vector))

    def _similarity_score(self, text: str) -> float:
        similar = self.similarity(text)
        if similar is None:
            return 0.0
        return float(np.clip((similar - SIMILAR_LOW) / (SIMILAR_HIGH - SIMILAR_LOW), 0.0, 1.0))

    def _generic_vectors(self) -> Vectors | None:
        with self._lock:
            if self._generic is None and self._embedder is not None:
                try:
                    self._generic = self._embedder.embed(list(GENERIC_ANSWERS))
                except Exception:
                    self._disable()
            return self._generic

    def _disable(self) -> None:
        log.warning("evasive score: the embedder failed; phrases only from now", exc_info=True)
        self._embedder = None
        self._generic = None


@cache
def shared_embedder(kind: str) -> Embedder:
    """One embedder of a kind per process: every runtime's detector shares its model."""
    return create_embedder(kind)


_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Diversity:
    distinct_1: float | None  # distinct words / words, over the window
    distinct_2: float | None  # distinct word pairs / word pairs, over the window
    type_token_ratio: float | None  # the mean of each answer's own, over the window


class DiversityWindow:
    """The last `size` answers of one prompt version, with running n-gram counts."""

    def __init__(self, size: int) -> None:
        self._answers: deque[tuple[list[str], list[tuple[str, str]], float | None]] = deque()
        self._size = size
        self._unigrams: Counter[str] = Counter()
        self._bigrams: Counter[tuple[str, str]] = Counter()
        self._tokens = 0
        self._pairs = 0
        self._ratios = 0.0
        self._rated = 0

    def add(self, text: str) -> Diversity:
        tokens = words(text)
        pairs = list(pairwise(tokens))
        ratio = len(set(tokens)) / len(tokens) if tokens else None
        self._answers.append((tokens, pairs, ratio))
        self._count(tokens, pairs, ratio, 1)
        if len(self._answers) > self._size:
            self._count(*self._answers.popleft(), -1)
        return Diversity(
            distinct_1=len(self._unigrams) / self._tokens if self._tokens else None,
            distinct_2=len(self._bigrams) / self._pairs if self._pairs else None,
            type_token_ratio=self._ratios / self._rated if self._rated else None,
        )

    def _count(
        self, tokens: list[str], pairs: list[tuple[str, str]], ratio: float | None, sign: int
    ) -> None:
        _change(self._unigrams, tokens, sign)
        _change(self._bigrams, pairs, sign)
        self._tokens += sign * len(tokens)
        self._pairs += sign * len(pairs)
        if ratio is not None:
            self._ratios += sign * ratio
            self._rated += sign


def _change(counts: Counter[_K], items: list[_K], sign: int) -> None:
    for item in items:
        left = counts[item] + sign
        if left > 0:
            counts[item] = left
        else:
            del counts[item]  # gone from the window: no longer a distinct n-gram


class DiversityTracker:
    """A window per prompt version; the least recently seen are forgotten beyond `keys`."""

    def __init__(self, size: int, *, keys: int = 1000) -> None:
        self._size = size
        self._keys = keys
        self._windows: OrderedDict[tuple[str | None, str | None], DiversityWindow] = OrderedDict()

    def add(self, prompt: str | None, version: str | None, text: str) -> Diversity:
        key = (prompt, version)
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = DiversityWindow(self._size)
            if len(self._windows) > self._keys:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
        return window.add(text)
