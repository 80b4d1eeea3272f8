"""Policy kinds by name, and `build_policy`: a router's settings in, a ready policy out.

A new policy is one new module plus one line in POLICY_KINDS. Entries are import paths resolved
on first use, so a fixed router never imports the learned one's numpy and ONNX dependencies.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol, cast

from tether.cache.embedders.base import Embedder
from tether.errors import ConfigError
from tether.routing.base import RoutePolicy
from tether.routing.config import RouterSettings, routed_models
from tether.routing.context import BuildContext

if TYPE_CHECKING:
    from tether.settings import Settings

POLICY_KINDS: dict[str, str] = {
    "fixed": "tether.routing.policies.fixed:FixedPolicy",
    "weighted": "tether.routing.policies.weighted:WeightedPolicy",
    "rules": "tether.routing.policies.rules:RulesPolicy",
    "learned": "tether.routing.policies.learned:LearnedPolicy",
}


class _Buildable(Protocol):
    def from_settings(self, config: Any, context: BuildContext) -> RoutePolicy: ...


def policy_class(kind: str) -> _Buildable:
    try:
        target = POLICY_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(POLICY_KINDS))
        raise ConfigError(
            f"unknown routing policy {kind!r} (known: {known})",
            file=None,
            field="policy",
            fix=f"use one of: {known}",
        ) from None
    module_name, _, attr = target.partition(":")
    return cast(_Buildable, getattr(import_module(module_name), attr))


def build_policy(name: str, settings: Settings, *, embedder: Embedder | None = None) -> RoutePolicy:
    """The policy of `[routers.NAME]`; every model it names must be configured.

    Raises ConfigError naming the field (`routers.NAME.<field>`) for an unknown router, a model
    not in `models`, a bad regex, a user function outside the allow-list, or an unusable router
    file. Build once and reuse: a learned policy loads its file and embedder here."""
    try:
        config: RouterSettings = settings.routers[name]
    except KeyError:
        known = ", ".join(sorted(settings.routers)) or "none"
        raise ConfigError(
            f"unknown router {name!r} (configured: {known})",
            file=settings.source,
            field=f"routers.{name}",
            fix="use one of the configured names, or add a [routers.<name>] table",
        ) from None
    context = BuildContext(
        name=name, allowed_modules=tuple(settings.prompt_model_modules), embedder=embedder
    )
    for where, model in routed_models(config):
        if model not in settings.models:
            configured = ", ".join(sorted(settings.models))
            raise ConfigError(
                f"unknown model {model!r} (configured: {configured})",
                file=settings.source,
                field=context.field(where),
                fix="name a model from [models], or add a [models.<name>] table",
            )
    try:
        return policy_class(config.policy).from_settings(config, context)
    except ConfigError as exc:
        if exc.file is not None:
            raise
        raise ConfigError(
            exc.message.removeprefix(f"{exc.field}: "),
            file=settings.source,
            field=exc.field,
            fix=exc.fix,
        ) from None
