"""`weighted`: models in proportion to their weights.

With a `seed` and a request id, the draw is blake2b(seed, request id) mapped to [0, 1): the same
request always lands on the same arm (a retry or a replay is comparable with the first try),
and over many ids the shares follow the weights. Without either, the draw is random.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Sequence
from itertools import accumulate

from tether.routing.base import RouteDecision, RouteInput, RoutePolicy
from tether.routing.config import WeightedRouterSettings
from tether.routing.context import BuildContext

_SCALE = float(1 << 64)


def hashed_draw(seed: str, key: str) -> float:
    """A number in [0, 1) that depends only on (seed, key)."""
    digest = hashlib.blake2b(key.encode(), key=seed.encode()[:64], digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


class WeightedPolicy(RoutePolicy):
    kind = "weighted"

    def __init__(self, arms: Sequence[tuple[str, float]], *, seed: str | None = None) -> None:
        if not arms or any(weight <= 0 for _, weight in arms):
            raise ValueError("weighted routing needs at least one arm, every weight > 0")
        self.models = [model for model, _ in arms]
        self.weights = [weight for _, weight in arms]
        total = sum(self.weights)
        self._edges = [edge / total for edge in accumulate(self.weights)]
        self._seed = seed
        self._random = random.Random()

    @classmethod
    def from_settings(cls, config: WeightedRouterSettings, context: BuildContext) -> WeightedPolicy:
        return cls([(arm.model, arm.weight) for arm in config.models], seed=config.seed)

    def decide(self, request: RouteInput) -> RouteDecision:
        if self._seed is not None and request.request_id is not None:
            draw, how = hashed_draw(self._seed, request.request_id), "hashed from the request id"
        else:
            draw, how = self._random.random(), "random"
        index = min(bisect.bisect_right(self._edges, draw), len(self.models) - 1)
        share = self.weights[index] / sum(self.weights)
        model = self.models[index]
        return RouteDecision(
            model=model,
            reason=f"weighted: {model} (weight {self.weights[index]:g}, {share:.0%} of "
            f"requests), draw {draw:.3f} {how}",
            policy=self.kind,
            score=draw,
        )
