"""Groundedness: claims the context supports (restated, paraphrased, or split over two of its
sentences) against invented ones (new facts, changed figures), and where the context comes
from."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tether.evals.groundedness import (
    Groundedness,
    bundled_embedder,
    context_of,
    groundedness,
    sentences,
)

CONTEXT = (
    "Acme was founded in 1990 in Oslo. It makes bicycles and sells them in 12 countries. "
    "The company has 300 employees."
)


def test_supported_claims_score_one() -> None:
    report = groundedness("Acme was founded in 1990. It sells bicycles in 12 countries.", CONTEXT,
                          embedder=bundled_embedder())  # fmt: skip
    assert report.score == 1.0
    assert report.unsupported == []
    assert report.reason() == "2 of 2 claims supported"


def test_a_paraphrase_is_supported_by_meaning() -> None:
    answer = "Acme makes bicycles."  # "It makes bicycles": the subject is a sentence earlier
    assert groundedness(answer, CONTEXT, embedder=bundled_embedder()).score == 1.0


def test_invented_claims_are_reported() -> None:
    answer = (
        "Sure! Acme was founded in 1990 in Oslo. Acme makes electric cars. "
        "The CEO is John Smith. The company has 450 employees."
    )
    report = groundedness(answer, CONTEXT, embedder=bundled_embedder())
    assert report.supported == ["Acme was founded in 1990 in Oslo."]  # "Sure!" is no claim
    assert report.unsupported == [
        "Acme makes electric cars.",
        "The CEO is John Smith.",
        "The company has 450 employees.",
    ]
    assert report.score == pytest.approx(0.25)
    assert "unsupported: Acme makes electric cars. | The CEO is John Smith." in report.reason()


def test_a_changed_figure_is_never_supported() -> None:
    report = groundedness("Acme was founded in 1999 in Oslo.", CONTEXT, embedder=bundled_embedder())
    assert report.score == 0.0


def test_shared_words_alone_without_an_embedder() -> None:
    assert groundedness("Acme sells bicycles in 12 countries.", CONTEXT).score == 1.0
    assert groundedness("Acme makes cars.", CONTEXT).score == 0.0
    assert groundedness("", CONTEXT).score == 1.0  # no claims, nothing unsupported
    assert groundedness("Acme makes bicycles.", "").unsupported == ["Acme makes bicycles."]


def test_sentences_and_context_sources() -> None:
    assert sentences("One. Two!\n- three\n\n  Four?") == ["One.", "Two!", "three", "Four?"]
    messages = [
        {"role": "system", "content": "Answer from the notes."},
        {"role": "user", "content": "Notes: Acme has 300 employees."},
        {"role": "assistant", "content": "an example answer"},
    ]
    assert context_of("messages", messages, {}) == (
        "Answer from the notes.\nNotes: Acme has 300 employees."
    )
    assert context_of("system", messages, {}) == "Answer from the notes."
    assert context_of("user", messages, {}) == "Notes: Acme has 300 employees."
    assert context_of("input:notes", messages, {"notes": "Acme"}) == "Acme"
    assert context_of("input:notes", messages, {}) is None


def test_the_evaluator_settings() -> None:
    check = Groundedness.model_validate({"type": "groundedness", "field": "answer"})
    assert (check.context, check.min_score) == ("messages", 0.8)
    with pytest.raises(ValidationError, match="context"):
        Groundedness.model_validate({"type": "groundedness", "context": "assistant"})
    with pytest.raises(ValidationError, match="min_score"):
        Groundedness.model_validate({"type": "groundedness", "min_score": 2})
