"""Router settings: one `[routers.NAME]` table per router, its `policy` naming the kind.

    [routers.support]
    policy = "rules"
    default = "cheap-model"
    fallbacks = ["local"]
    [[routers.support.rules]]
    keywords = ["refund", "chargeback"]
    model = "premium-model"
    [[routers.support.rules]]
    regex = "^(hi|hello)\\\\b"
    answer = "Hello! How can I help?"

A client picks a router with `model="router:NAME"`; a prompt spec may say `model: router:NAME`.
Everything here is checked when the settings load; what needs other settings (the models a
router names exist, a user function imports) is checked by `build_policy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ROUTER_PREFIX = "router:"


class _Strict(BaseModel):
    # As settings._Strict: unknown fields are refused, values are frozen once loaded.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Router(_Strict):
    fallbacks: list[str] = Field(
        default_factory=list, description="models tried in order when the chosen one fails"
    )


class FixedRouterSettings(_Router):
    """Always one model."""

    policy: Literal["fixed"]
    model: str = Field(min_length=1)


class WeightedArm(_Strict):
    model: str = Field(min_length=1)
    weight: float = Field(gt=0, description="relative share of requests, e.g. 9 and 1")


class WeightedRouterSettings(_Router):
    """Models in proportion to their weights. With `seed` set and a request id, the arm is a
    hash of both, so a retried request lands on the arm it landed on before."""

    policy: Literal["weighted"]
    models: list[WeightedArm] = Field(min_length=1)
    seed: str | None = Field(
        default=None, description="makes the choice a pure function of (seed, request id)"
    )


class RuleSettings(_Strict):
    """Conditions (all must hold) and an outcome: a model, or an answer made without one."""

    name: str | None = None
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=0)
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    keywords: list[str] | None = Field(
        default=None, description="any of these words or phrases, case-insensitive"
    )
    regex: str | None = Field(default=None, description="searched in the user's text")
    metadata: dict[str, str] | None = Field(
        default=None, description="every key equals this value in the request's metadata"
    )
    function: str | None = Field(
        default=None,
        description="module:function taking a RouteInput and returning bool; imported only "
        "from prompt_model_modules",
    )
    model: str | None = None
    answer: str | None = Field(default=None, description="the reply, made without a model")

    @model_validator(mode="after")
    def _one_condition_one_outcome(self) -> RuleSettings:
        conditions = (
            self.min_chars, self.max_chars, self.min_tokens, self.max_tokens, self.keywords,
            self.regex, self.metadata, self.function,
        )  # fmt: skip
        if all(c is None for c in conditions):
            raise ValueError(
                "a rule needs a condition: min_chars, max_chars, min_tokens, max_tokens, "
                "keywords, regex, metadata or function"
            )
        if (self.model is None) == (self.answer is None):
            raise ValueError("a rule needs exactly one outcome: `model` or `answer`")
        if self.keywords is not None and not any(k.strip() for k in self.keywords):
            raise ValueError("keywords is empty: list at least one word")
        return self


class RulesRouterSettings(_Router):
    """The first rule that matches decides; `default` when none does."""

    policy: Literal["rules"]
    rules: list[RuleSettings] = Field(min_length=1)
    default: str = Field(min_length=1, description="the model when no rule matches")


class LearnedRouterSettings(_Router):
    """`cheap` unless the trained router expects `premium` to do better, then `premium`.

    A request goes to premium when p(premium passes) - p(cheap passes) is above the threshold.
    The threshold comes from the router file (set by `tether route train`), or from one of:
    `target_quality` (share of premium quality to keep, measured on held-out training rows),
    `target_premium_share` (share of requests sent to premium), `threshold` (on the gain).
    `rules` run first, as in a rules router (answers included)."""

    policy: Literal["learned"]
    cheap: str = Field(min_length=1)
    premium: str = Field(min_length=1)
    path: Path = Field(description="the router file written by `tether route train`")
    target_quality: float | None = Field(
        default=None, gt=0, le=1, description="e.g. 0.95: keep 95% of premium's accuracy"
    )
    target_premium_share: float | None = Field(
        default=None, ge=0, le=1, description="e.g. 0.3: send 30% of requests to premium"
    )
    threshold: float | None = Field(
        default=None, ge=-1, le=1, description="premium when the expected gain is above this"
    )
    embedder: str = Field(
        default="minilm",
        description='the sentence model of embedding "minilm"; must be the one the router was '
        "trained on",
    )
    embedding: Literal["minilm", "minilm-static", "none"] | None = Field(
        default=None,
        description='how texts become vectors: "minilm" (the transformer, milliseconds), '
        '"minilm-static" (its token embeddings averaged, microseconds), "none" (text features '
        "only); unset: as the router file was trained, set: must equal it",
    )
    max_tokens: int | None = Field(
        default=None,
        ge=3,
        description="texts cut after this many tokens before embedding; unset: as the router "
        "file was trained, set: must equal it",
    )
    rules: list[RuleSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_target(self) -> LearnedRouterSettings:
        set_ = [
            name
            for name in ("target_quality", "target_premium_share", "threshold")
            if getattr(self, name) is not None
        ]
        if len(set_) > 1:
            raise ValueError(f"set at most one of {', '.join(set_)}")
        return self


RouterSettings = Annotated[
    FixedRouterSettings | WeightedRouterSettings | RulesRouterSettings | LearnedRouterSettings,
    Field(discriminator="policy"),
]


def routed_models(router: RouterSettings) -> list[tuple[str, str]]:
    """(field, model) for every model the router may name, fallbacks included."""
    found: list[tuple[str, str]] = []
    match router:
        case FixedRouterSettings():
            found.append(("model", router.model))
        case WeightedRouterSettings():
            found += [(f"models.{i}.model", arm.model) for i, arm in enumerate(router.models)]
        case RulesRouterSettings():
            found.append(("default", router.default))
        case LearnedRouterSettings():
            found += [("cheap", router.cheap), ("premium", router.premium)]
    for index, rule in enumerate(getattr(router, "rules", [])):
        if rule.model is not None:
            found.append((f"rules.{index}.model", rule.model))
    found += [(f"fallbacks.{i}", model) for i, model in enumerate(router.fallbacks)]
    return found


def router_name(model: str | None) -> str | None:
    """NAME when `model` is "router:NAME", else None."""
    if model is not None and model.startswith(ROUTER_PREFIX):
        return model[len(ROUTER_PREFIX) :]
    return None
