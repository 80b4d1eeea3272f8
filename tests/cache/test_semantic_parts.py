"""The semantic cache's parts on their own: guards, the scorer and its files, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tether.cache.semantic.calibration import calibrate, upper_bound
from tether.cache.semantic.guards import veto
from tether.cache.semantic.scorer import Scorer, bundled, fit, load, pair_features, write
from tether.errors import ConfigError


@pytest.mark.parametrize(
    ("query", "cached", "guard"),
    [
        ("Is this mushroom not safe to eat?", "Is this mushroom safe to eat?", "negation"),
        ("Is this safe to eat?", "Is this unsafe to eat?", "polarity"),
        ("Chinese shares close higher", "Chinese shares close lower", "polarity"),
        ("Bombings kill 9 people in Iraq", "Bombings kill 19 people in Iraq", "numbers"),
        ("Stocks close 0.39% higher", "Stocks close 2.47% higher", "numbers"),
        ("Must-reads for Friday, December 6", "Must-reads for Friday, July 6", "dates"),
        ("Is it open on Mondays?", "Is it open on Tuesday?", "dates"),
        ("How far is 5 miles?", "How far is 5 km?", "units"),
    ],
)
def test_guards_veto_what_embeddings_miss(query: str, cached: str, guard: str) -> None:
    assert veto(query, cached) == guard


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("How do I reset my password?", "How can I reset my password?"),
        ("Two men are fighting.", "Some men are fighting."),  # a number on one side only
        ("Three dogs run.", "3 dogs run."),  # number words are numbers
        ("It isn't working, is it not?", "It is working, is it?"),  # two negations cancel
    ],
)
def test_guards_let_paraphrases_through(query: str, cached: str) -> None:
    assert veto(query, cached) is None


def test_the_entities_guard_is_there_when_asked_for() -> None:
    assert veto("Did Apple buy Beats?", "Did Google buy Beats?") is None
    assert veto("Did Apple buy Beats?", "Did Google buy Beats?", ["entities"]) == "entities"


def test_the_bundled_scorer_ranks_a_paraphrase_above_a_topic_match() -> None:
    scorer, calibration = bundled()
    assert len(calibration["scores"]) == len(calibration["same"]) > 1000
    paraphrase = scorer.score("How can I reset my password?", "How do I reset my password?", 0.95)
    topic = scorer.score("How do I delete my account?", "How do I reset my password?", 0.55)
    assert paraphrase > 0.9 > 0.1 > topic


def test_fit_separates_and_a_written_scorer_loads_back(tmp_path: Path) -> None:
    rows = [pair_features("a b c", "a b c", 0.95), pair_features("a b c", "x y z", 0.2)] * 20
    same = [True, False] * 20
    weights, bias = fit(rows, same)
    scorer = Scorer(weights, bias, "test-embedder", "two kinds of pair")
    assert scorer.score("a b c", "a b c", 0.95) > 0.9 > 0.1 > scorer.score("a b c", "x y z", 0.2)
    path = tmp_path / "scorer.json"
    write(path, scorer, [0.9, 0.1], [True, False])
    loaded, grades = load(path)
    assert loaded == scorer
    assert grades == {"scores": [0.9, 0.1], "same": [1, 0]}


def test_a_broken_scorer_file_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps({"scorer": {"features": ["cosine"], "weights": [1]}}))
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.field == "cache.semantic.scorer"
    assert str(path) in str(caught.value)


def test_the_upper_bound_is_conservative_for_few_samples() -> None:
    assert upper_bound(0, 0) == 1.0
    assert upper_bound(0, 10) > 0.2  # ten right answers prove little
    assert upper_bound(0, 600) < 0.01
    assert upper_bound(5, 100) > 0.05  # above the observed rate


def test_calibration_picks_the_lowest_threshold_that_keeps_the_bound() -> None:
    # 400 right answers scoring 0.6-1.0, then wrong ones from 0.55 down.
    scores = [0.6 + 0.001 * i for i in range(400)] + [0.55 - 0.001 * i for i in range(100)]
    right = [True] * 400 + [False] * 100
    found = calibrate(scores, right, 0.02, "test")
    assert found.threshold is not None
    admitted = [ok for score, ok in zip(scores, right, strict=True) if score >= found.threshold]
    assert found.hits == len(admitted) >= 400  # every right answer, and a few wrong ones ...
    assert upper_bound(admitted.count(False), len(admitted)) == found.bound <= 0.02  # ... bounded
    lower = [
        ok for score, ok in zip(scores, right, strict=True) if score >= found.threshold - 0.0015
    ]
    assert upper_bound(lower.count(False), len(lower)) > 0.02  # one step lower breaks the bound
    assert calibrate(scores[:50], right[:50], 0.02, "few").threshold is None
    mixed = calibrate([0.9, 0.8, 0.7] * 200, [True, False] * 300, 0.05, "noisy")
    assert mixed.threshold is None  # half of them wrong at every score


def test_calibration_scores_come_from_scorers_fitted_without_the_pair() -> None:
    from tether.cache.semantic.fitting import held_out_scores
    from tether.cache.semantic.scorer import Scorer, fit

    rng = np.random.default_rng(3)
    same = [bool(i % 2) for i in range(200)]
    rows = [[float(s) + rng.normal(0, 0.8), *rng.normal(0, 1, 5)] for s in same]
    weights, bias = fit(rows, same)
    scorer = Scorer(weights, bias, "fake", "test")
    held = held_out_scores(rows, same, scorer)
    in_sample = [scorer.of_features(row) for row in rows]
    assert held != in_sample  # each pair is scored by a model that never saw it
    # ... and a model that never saw a pair is less sure of it on average
    confident = sum(abs(s - 0.5) for s in in_sample)
    assert sum(abs(s - 0.5) for s in held) < confident
    one_sided = held_out_scores(rows[:12], [True] * 11 + [False], scorer)
    assert one_sided[11] == scorer.of_features(rows[11])  # its fold's rest has one verdict
