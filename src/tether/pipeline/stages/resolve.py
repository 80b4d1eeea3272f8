"""resolve: a prompt name and label (or version) to one immutable prompt version."""

from __future__ import annotations

from collections.abc import Callable

from tether.pipeline.context import Context
from tether.pipeline.stage import Stage
from tether.prompts.registry import Registry
from tether.store.offload import in_thread


class Resolve(Stage):
    name = "resolve"

    def __init__(self, registry: Callable[[], Registry]) -> None:
        self._registry = registry

    async def run(self, ctx: Context) -> None:
        ask = ctx.ask
        if ask.compiled is not None:
            ctx.compiled = ask.compiled
            return
        if ask.prompt is None:
            return
        label = None if ask.version else ask.label

        def lookup() -> None:
            registry = self._registry()
            ctx.found = registry.get(ask.prompt or "", version=ask.version, label=label)
            ctx.compiled = registry.compiled(ctx.found)

        # The registry is in the database: its queries run off the event loop.
        await in_thread(lookup, what="prompt registry")
