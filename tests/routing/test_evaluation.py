"""Cost-quality curves and APGR, computed as RouteLLM computes them."""

from __future__ import annotations

import numpy as np
import pytest

from tether.routing.learned.evaluation import cost_quality_curve, routed_accuracy


def outcomes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    cheap = rng.random(n) < 0.6
    premium = cheap | (rng.random(n) < 0.6)
    return cheap, premium


def test_random_scores_recover_half_the_gap() -> None:
    cheap, premium = outcomes(20_000)
    curve = cost_quality_curve(np.random.default_rng(1).random(20_000), cheap, premium)
    assert curve.apgr() == pytest.approx(0.5, abs=0.03)
    assert curve.premium_share[0] == 0.0
    assert curve.premium_share[-1] == 1.0
    assert curve.accuracy[0] == pytest.approx(cheap.mean())
    assert curve.accuracy[-1] == pytest.approx(premium.mean())


def test_oracle_recovers_the_gap_with_the_fewest_calls() -> None:
    cheap, premium = outcomes(10_000)
    oracle = (premium & ~cheap).astype(float)
    curve = cost_quality_curve(oracle + np.random.default_rng(2).random(10_000) * 1e-3,
                               cheap, premium)  # fmt: skip
    needed = (premium & ~cheap).mean()
    assert curve.apgr() > 0.85
    assert curve.share_for_gap(1.0) == pytest.approx(needed, abs=0.11)  # one 10% step
    inverted = cost_quality_curve(-oracle, cheap, premium)
    assert inverted.apgr() < 0.5


def test_small_example_by_hand() -> None:
    # Four requests; the router sends the highest scores to premium first: 0.9 (cheap fails,
    # +1), then 0.5 (cheap passes, +0), then 0.3 (+1), then 0.1 (+0).
    scores = [0.9, 0.1, 0.5, 0.3]
    cheap = [False, True, True, False]
    premium = [True, True, True, True]
    curve = cost_quality_curve(scores, cheap, premium, points=4)
    assert list(curve.premium_share) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert list(curve.accuracy) == [0.5, 0.75, 0.75, 1.0, 1.0]
    # Area: trapezoids of width 0.25 -> 0.15625 + 0.1875 + 0.21875 + 0.25 = 0.8125.
    assert curve.apgr() == pytest.approx((0.8125 - 0.5) / 0.5)
    assert curve.share_for_gap(0.5) == pytest.approx(0.25)
    assert curve.share_for_gap(0.75) == pytest.approx(0.625)
    assert routed_accuracy([True, False, False, False], cheap, premium) == 0.75


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="equal, non-zero length"):
        cost_quality_curve([0.1, 0.2], [True], [True, False])
