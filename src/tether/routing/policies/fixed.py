"""`fixed`: always one model."""

from __future__ import annotations

from tether.routing.base import RouteDecision, RouteInput, RoutePolicy
from tether.routing.config import FixedRouterSettings
from tether.routing.context import BuildContext


class FixedPolicy(RoutePolicy):
    kind = "fixed"

    def __init__(self, model: str) -> None:
        self.model = model

    @classmethod
    def from_settings(cls, config: FixedRouterSettings, context: BuildContext) -> FixedPolicy:
        return cls(config.model)

    def decide(self, request: RouteInput) -> RouteDecision:
        return RouteDecision(model=self.model, reason=f"fixed: {self.model}", policy=self.kind)
