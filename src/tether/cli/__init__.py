"""The `tether` command line: one module per command group, wired here."""

from __future__ import annotations

import typer

from tether.cli import (
    cache,
    calibration,
    canary,
    costs,
    drift,
    evaluate,
    export,
    generate,
    keys,
    models,
    prompt_tests,
    prompts,
    readiness,
    route,
    serve,
)

app = typer.Typer(
    name="tether",
    help="A contract around every LLM call.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
generate.register(app)
models.register(app)
prompts.register(app)
prompt_tests.register(app)
keys.register(app)
serve.register(app)
costs.register(app)
route.register(app)
cache.register(app)
drift.register(app)
canary.register(app)
calibration.register(app)
evaluate.register(app)
export.register(app)
readiness.register(app)


def main() -> None:
    app()
