"""Groundedness: how much of an answer the context it was given supports.

The answer is split into claims (sentences); a claim is supported when a sentence of the
context (alone or with the one before it) shares most of its content words, or is close in
meaning (embedding cosine at or above a threshold). Either way every number in the claim must
appear in the context: embeddings see topic, not figures, so "founded in 1990" and "founded in
1999" would otherwise match.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tether.cache.embedders.base import Embedder, normalise

# Lowest cosine at which MiniLM takes a claim as a restatement of a context sentence: below the
# `similar` assertion's 0.84 because a claim usually says less than the sentence it comes from.
SEMANTIC_THRESHOLD = 0.75
OVERLAP_THRESHOLD = 0.75  # share of a claim's content words found in one context sentence

_SPLIT = re.compile(r"(?<=[.!?;])\s+|\n+")
_TOKEN = re.compile(r"[^\W_]+(?:[.,'][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)*$")
_STOPWORD_TEXT = """a an the and or but if then else of to in on at by for with from as into onto
    about over under is are was were be been being am do does did done has have had having
    it its it's this
    that these those there here their they them he she his her him we us our you your i me my
    not no so such than too very can could will would shall should may might must also just
    only which who whom whose what when where why how all any each both few more most other
    some same own again further once up down out off s t
    sure yes ok okay certainly absolutely hello hi thanks thank please course"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


class Groundedness(BaseModel):
    """An evaluator: the share of the answer's claims that the request's context supports.

    `context`: `messages` (every system and user message of the rendered prompt), `system`,
    `user`, or `input:NAME` (the input variable NAME; known in prompt tests, not in the
    request log)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["groundedness"]
    field: str | None = Field(
        default=None, description="dotted path to the answer in the output; none = whole output"
    )
    context: str = Field(default="messages", pattern=r"^(messages|system|user|input:\w+)$")
    min_score: float = Field(default=0.8, ge=0, le=1, description="share needed to pass")
    threshold: float = Field(default=SEMANTIC_THRESHOLD, ge=-1, le=1)
    overlap: float = Field(default=OVERLAP_THRESHOLD, gt=0, le=1)


@dataclass(frozen=True)
class GroundednessReport:
    score: float  # supported claims / claims (1.0 for an answer with no claims)
    supported: list[str]
    unsupported: list[str]

    def reason(self) -> str:
        total = len(self.supported) + len(self.unsupported)
        head = f"{len(self.supported)} of {total} claims supported"
        if not self.unsupported:
            return head
        return head + "; unsupported: " + " | ".join(self.unsupported)


def sentences(text: str) -> list[str]:
    parts = (p.strip(" \t-*•") for p in _SPLIT.split(text))
    return [p for p in parts if p]


def _tokens(text: str) -> list[str]:
    return [t.casefold() for t in _TOKEN.findall(text)]


def _stem(word: str) -> str:
    """Plural and simple verb endings off, so "ships" meets "ship" and "shipped" meets "ships"."""
    for ending in ("ing", "ed", "es", "s"):
        if len(word) > len(ending) + 2 and word.endswith(ending):
            return word[: -len(ending)]
    return word


def _numbers(tokens: Sequence[str]) -> set[str]:
    return {t.replace(",", "") for t in tokens if _NUMBER.match(t)}


def _words(tokens: Sequence[str]) -> set[str]:
    return {_stem(t) for t in tokens if t not in _STOPWORDS and not _NUMBER.match(t)}


@dataclass(frozen=True)
class _Sentence:
    text: str
    words: set[str]
    numbers: set[str]


def _parsed(text: str) -> _Sentence:
    tokens = _tokens(text)
    return _Sentence(text, _words(tokens), _numbers(tokens))


def groundedness(
    answer: str,
    context: str,
    *,
    embedder: Embedder | None = None,
    threshold: float = SEMANTIC_THRESHOLD,
    overlap: float = OVERLAP_THRESHOLD,
) -> GroundednessReport:
    """Which claims of `answer` `context` supports. Without `embedder`, only shared words
    count."""
    said = sentences(context)
    # a sentence alone, and with the one before it: "It makes bicycles" names its subject there
    windows = [*said, *(f"{a} {b}" for a, b in pairwise(said))]
    facts = [_parsed(s) for s in windows]
    known_numbers = set().union(*(f.numbers for f in facts)) if facts else set()
    claims = [c for c in (_parsed(s) for s in sentences(answer)) if c.words or c.numbers]
    supported: list[str] = []
    open_claims: list[_Sentence] = []
    for claim in claims:
        if not claim.numbers <= known_numbers:
            continue  # an invented figure is never supported
        if any(_shares(claim, fact, overlap) for fact in facts):
            supported.append(claim.text)
        else:
            open_claims.append(claim)
    if open_claims and facts and embedder is not None:
        close = _close_in_meaning(embedder, open_claims, facts, threshold)
        supported += [c.text for c, ok in zip(open_claims, close, strict=True) if ok]
    kept = set(supported)
    ordered = [c.text for c in claims if c.text in kept]
    unsupported = [c.text for c in claims if c.text not in kept]
    score = len(ordered) / len(claims) if claims else 1.0
    return GroundednessReport(score, ordered, unsupported)


def _shares(claim: _Sentence, fact: _Sentence, overlap: float) -> bool:
    if not claim.numbers <= fact.numbers:
        return False
    if not claim.words:
        return True  # only numbers, all found in this sentence
    return len(claim.words & fact.words) / len(claim.words) >= overlap


def _close_in_meaning(
    embedder: Embedder, claims: Sequence[_Sentence], facts: Sequence[_Sentence], threshold: float
) -> list[bool]:
    vectors = normalise(np.asarray(embedder.embed([c.text for c in (*claims, *facts)])))
    cosines = vectors[: len(claims)] @ vectors[len(claims) :].T
    return [bool(row.max() >= threshold) for row in cosines]


@functools.cache
def bundled_embedder() -> Embedder:
    """The packaged MiniLM, loaded once per process."""
    from tether.cache.embedders.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def context_of(
    source: str, messages: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]
) -> str | None:
    """The text a request was given, as `source` names it (None: not available)."""
    if source.startswith("input:"):
        value = inputs.get(source.removeprefix("input:"))
        return None if value is None else value if isinstance(value, str) else str(value)
    roles = {"messages": ("system", "user"), "system": ("system",), "user": ("user",)}[source]
    texts = [str(m.get("content") or "") for m in messages if m.get("role") in roles]
    return "\n".join(texts)
