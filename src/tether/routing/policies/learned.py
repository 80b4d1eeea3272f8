"""`learned`: the cheap model unless a trained router expects the premium one to do better.

Rules in the router's settings run first (an answer or a model from them wins). Then the
request's text (its first MAX_ROUTE_CHARS characters) is embedded, the way the router file was
trained (its `embedding` and `max_tokens`, `tether.routing.learned.embedding`), and scored by
the router file (`tether.routing.learned.model`): premium when the expected gain,
p(premium passes) - p(cheap passes), is above the threshold. The reason shows the numbers:
"p(cheap passes)=0.81, p(premium passes)=0.90: gain 0.09 <= 0.12: cheap".

The threshold is the settings' `threshold`, or derived from `target_quality` /
`target_premium_share` on the router file's held-out scores, or the one stored at training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tether.cache.embedders.base import Embedder
from tether.cache.embedders.registry import create_embedder
from tether.routing.base import RouteDecision, RouteInput, RoutePolicy
from tether.routing.config import LearnedRouterSettings
from tether.routing.context import BuildContext
from tether.routing.learned.embedding import router_embedder
from tether.routing.learned.features import text_features
from tether.routing.learned.model import Prediction, TrainedRouter, embedder_mismatch
from tether.routing.learned.train import route_text
from tether.routing.policies.rules import RuleSet


def embedder_for(
    router: TrainedRouter,
    kind: str,
    *,
    path: Path,
    field: str = "path",
    model: Embedder | None = None,
) -> Embedder:
    """The embedder a loaded router file was trained with: its `embedding` and `max_tokens`
    over the sentence model `model` (else the registry's `kind`; only "minilm" runs one).
    ConfigError naming the file when that embedder's name differs from the file's."""
    if router.embedding == "minilm" and model is None:
        model = create_embedder(kind)
    embedder = router_embedder(router.embedding, router.max_tokens, model)
    if embedder.name != router.embedder:
        raise embedder_mismatch(path, field, router.embedder, embedder.name)
    return embedder


@dataclass(frozen=True)
class Scored:
    decision: RouteDecision
    prediction: Prediction | None  # None when a rule decided


class LearnedPolicy(RoutePolicy):
    kind = "learned"
    cpu_bound = True

    def __init__(
        self,
        router: TrainedRouter,
        embedder: Embedder,
        *,
        cheap: str,
        premium: str,
        threshold: float | None = None,
        rules: RuleSet | None = None,
    ) -> None:
        if embedder.name != router.embedder:
            raise ValueError(
                f"router trained on {router.embedder!r}, embedder is {embedder.name!r}"
            )
        self.router = router
        self.embedder = embedder
        self.cheap = cheap
        self.premium = premium
        self.threshold = router.threshold if threshold is None else threshold
        self.rules = rules or RuleSet(())

    @classmethod
    def from_settings(cls, config: LearnedRouterSettings, context: BuildContext) -> LearnedPolicy:
        field = context.field("path")
        router = TrainedRouter.load(
            config.path, embedding=config.embedding, max_tokens=config.max_tokens, field=field
        )
        embedder = embedder_for(
            router, config.embedder, path=config.path, field=field, model=context.embedder
        )
        threshold = config.threshold
        if config.target_quality is not None:
            threshold = router.threshold_for_quality(config.target_quality)
        elif config.target_premium_share is not None:
            threshold = router.threshold_for_share(config.target_premium_share)
        return cls(
            router,
            embedder,
            cheap=config.cheap,
            premium=config.premium,
            threshold=threshold,
            rules=RuleSet.from_settings(config.rules, context),
        )

    def decide(self, request: RouteInput) -> RouteDecision:
        return self.score(request).decision

    def score(self, request: RouteInput, *, neighbours: int = 0) -> Scored:
        """The decision plus what it rests on (`tether route explain` shows both)."""
        decided, notes = self.rules.decide(request, self.kind)
        if decided is not None:
            return Scored(decided, None)
        text = route_text(request.text)
        vectors = self.embedder.embed([text])
        (prediction,) = self.router.predict(vectors, text_features([text]), top=neighbours)
        premium = prediction.gain > self.threshold
        model = self.premium if premium else self.cheap
        reason = (
            f"p(cheap passes)={prediction.p_cheap:.2f}, p(premium passes)="
            f"{prediction.p_premium:.2f}: gain {prediction.gain:.2f} "
            f"{'>' if premium else '<='} {self.threshold:.2f}: "
            f"{'premium' if premium else 'cheap'} ({model})"
        )
        return Scored(
            RouteDecision(
                model=model,
                reason="; ".join([reason, *notes]),
                policy=self.kind,
                score=prediction.p_cheap,
            ),
            prediction,
        )
