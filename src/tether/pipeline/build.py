"""The chain, built from settings: the stages in the order of the request path.

    resolve -> render -> admit -> route -> call (with fallbacks, validate/repair) -> record
    -> settle

A new policy plugs in behind a stage's interface (a limit store, a routing policy, a
provider); a new stage is one module in `stages/` and one entry here.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from tether.pipeline.chain import Pipeline
from tether.pipeline.stages.admit import Admit
from tether.pipeline.stages.call import Call
from tether.pipeline.stages.record import Record
from tether.pipeline.stages.render import Render
from tether.pipeline.stages.resolve import Resolve
from tether.pipeline.stages.route import Route
from tether.pipeline.stages.settle import Settle
from tether.routing.registry import build_policy

if TYPE_CHECKING:
    from tether.runtime import Runtime


def build_pipeline(runtime: Runtime) -> Pipeline:
    settings = runtime.settings
    route = Route(settings, partial(build_policy, settings=settings))
    admit = Admit(runtime.limits, runtime.pool, settings.budgets, route.possible)
    return Pipeline(
        [
            Resolve(lambda: runtime.registry),
            Render(settings.default_model),
            admit,
            route,
            Call(
                runtime.planner,
                runtime.circuits,
                settings.calls,
                settings.models,
                runtime.limits,
                admit.maximum,
            ),
            Record(runtime),
            Settle(runtime.limits),
        ]
    )
