"""The chain, built from settings: the stages in the order of the request path.

    resolve -> render -> admit -> cache -> route -> call (with fallbacks, validate/repair)
    -> record -> settle

Each stage is made by a factory from the runtime (its settings and shared parts), so the
policies behind a stage come from settings: the limit store behind admit, the routers behind
route, the providers behind call. A new stage is one module in `stages/` plus an entry in
STAGES and its place in REQUEST_PATH.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from tether.pipeline.chain import Pipeline
from tether.pipeline.stage import Stage
from tether.pipeline.stages.admit import Admit
from tether.pipeline.stages.cache import Cache
from tether.pipeline.stages.call import Call
from tether.pipeline.stages.record import Record
from tether.pipeline.stages.render import Render
from tether.pipeline.stages.resolve import Resolve
from tether.pipeline.stages.route import Route
from tether.pipeline.stages.settle import Settle
from tether.routing.registry import build_policy

if TYPE_CHECKING:
    from tether.runtime import Runtime

REQUEST_PATH = ("resolve", "render", "admit", "cache", "route", "call", "record", "settle")


class _Built:
    """Stages made so far: a factory may use an earlier stage (admit prices the models that
    route may pick; call extends admit's reservations)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stages: dict[str, Stage] = {}

    def __getitem__(self, name: str) -> Stage:
        return self.stages[name]


def _route(built: _Built) -> Stage:
    settings = built.runtime.settings
    return Route(settings, partial(build_policy, settings=settings))


def _admit(built: _Built) -> Stage:
    runtime = built.runtime
    route = built.stages.get("route")
    possible = route.possible if isinstance(route, Route) else (lambda model: [model])
    return Admit(runtime.limits, runtime.pool, runtime.settings.budgets, possible)


def _call(built: _Built) -> Stage:
    runtime = built.runtime
    admit = built["admit"]
    assert isinstance(admit, Admit)
    return Call(
        runtime.planner,
        runtime.circuits,
        runtime.settings.calls,
        runtime.settings.models,
        runtime.limits,
        admit.maximum,
    )


STAGES: dict[str, Callable[[_Built], Stage]] = {
    "resolve": lambda built: Resolve(lambda: built.runtime.registry),
    "render": lambda built: Render(built.runtime.settings.default_model),
    "route": _route,
    "admit": _admit,
    "call": _call,
    "cache": lambda built: Cache(built.runtime.cache),
    "record": lambda built: Record(built.runtime, built.runtime.observers),
    "settle": lambda built: Settle(built.runtime.limits),
}
# Built in this order (a stage's factory may use those before it), run in REQUEST_PATH order.
_BUILD_ORDER = ("resolve", "render", "route", "admit", "cache", "call", "record", "settle")


def build_pipeline(runtime: Runtime) -> Pipeline:
    built = _Built(runtime)
    for name in _BUILD_ORDER:
        built.stages[name] = STAGES[name](built)
    return Pipeline([built.stages[name] for name in REQUEST_PATH])
