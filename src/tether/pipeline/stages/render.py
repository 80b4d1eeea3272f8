"""render: a compiled prompt's templates and typed inputs to messages (in the sandbox); the
spec's parameters under the caller's; the model named by the caller, the spec or the default."""

from __future__ import annotations

import asyncio

from tether.pipeline.context import Context
from tether.pipeline.stage import Stage


class Render(Stage):
    name = "render"

    def __init__(self, default_model: str) -> None:
        self._default_model = default_model

    async def run(self, ctx: Context) -> None:
        ask = ctx.ask
        compiled = ctx.compiled
        if compiled is None:
            ctx.messages = ask.messages
            ctx.contract = ask.contract
            ctx.params = dict(ask.params)
            ctx.model = ask.model or self._default_model
            return
        # Rendering runs user templates: CPU work that stays off the event loop.
        ctx.messages = await asyncio.to_thread(compiled.render, ask.inputs)
        spec_params = {k: v for k, v in compiled.spec.params.model_dump().items() if v is not None}
        ctx.params = {**spec_params, **ask.params}
        ctx.contract = compiled.contract
        ctx.model = ask.model or compiled.spec.model or self._default_model
