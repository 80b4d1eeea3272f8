"""`tether generate`: one validated call from the shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from tether.cli.common import (
    CacheOption,
    CacheUse,
    ConfigOption,
    open_client,
    reported_errors,
    stderr,
)
from tether.contracts.contract import Contract
from tether.messages import Message


def generate(
    text: Annotated[str, typer.Argument(help="the user message ('-' reads standard input)")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="model name")] = None,
    schema: Annotated[
        Path | None, typer.Option("--schema", "-s", help="JSON Schema file the output must meet")
    ] = None,
    system: Annotated[str | None, typer.Option(help="system message")] = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 512,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.0,
    max_repairs: Annotated[int | None, typer.Option(min=0, help="repair attempts")] = None,
    meta: Annotated[bool, typer.Option(help="print tokens, cost, latency to stderr")] = False,
    cache: CacheOption = CacheUse.use,
    config: ConfigOption = None,
) -> None:
    """Call a model; with --schema print the validated JSON, else the text."""
    prompt = sys.stdin.read() if text == "-" else text
    with reported_errors():
        contract = Contract.from_file(schema) if schema else None
        messages = [Message("system", system)] if system else []
        messages.append(Message("user", prompt))
        with open_client(config) as client:
            result = client.generate(
                messages,
                contract=contract,
                model=model,
                max_tokens=max_tokens,
                temperature=temperature,
                max_repairs=max_repairs,
                cache=cache.value,
            )
        output: Any = result.output
        if contract is not None:
            sys.stdout.write(orjson.dumps(output, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            sys.stdout.write(f"{output}\n")
        if meta:
            usage = result.usage
            stderr.print(
                f"{result.provider}/{result.model}: {usage.input_tokens} in + "
                f"{usage.output_tokens} out tokens, ${result.cost_usd:.6f}, "
                f"{result.latency_s * 1000:.0f} ms, {len(result.attempts)} attempt(s)",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    app.command()(generate)
