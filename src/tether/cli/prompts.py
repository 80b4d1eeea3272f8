"""`tether prompts ...`: push, list, show, diff, label, rollback, history, run, tokens."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from tether.cli.common import (
    CacheOption,
    CacheUse,
    ConfigOption,
    open_client,
    reported_errors,
    stderr,
    stdout,
)
from tether.client import Client
from tether.errors import InvalidRequest
from tether.observe.recorder import jsonable
from tether.prompts.compat import compare
from tether.prompts.loader import load_spec, spec_files
from tether.prompts.registry import PromptVersion
from tether.prompts.tokens import sample_inputs, token_report

app = typer.Typer(help="Prompts as code: a versioned registry with labels.", no_args_is_help=True)

Reason = Annotated[str, typer.Option("--reason", "-r", help="why (recorded with the move)")]


def _resolve(client: Client, name: str, ref: str | None) -> PromptVersion:
    """A version number, a label, or (none) the highest version."""
    if ref is None:
        return client.registry.get(name)
    if ref[:1].isdigit():
        return client.registry.get(name, version=ref)
    return client.registry.get(name, label=ref)


@app.command()
def push(
    paths: Annotated[list[Path], typer.Argument(help="spec files or folders of them")],
    message: Annotated[str, typer.Option("--message", "-m", help="change message")] = "",
    config: ConfigOption = None,
) -> None:
    """Register spec files as immutable versions (semantic-version rules are checked)."""
    with reported_errors(), open_client(config) as client:
        loaded = sorted(
            (
                load_spec(p, model_modules=client.settings.prompt_model_modules)
                for p in spec_files(paths)
            ),
            key=lambda s: (s.spec.name, s.spec.semver),
        )
        if not loaded:
            stdout.print("no spec files found")
            raise typer.Exit(1)
        table = Table(title="push")
        for column in ("prompt", "version", "result", "over", "changes"):
            table.add_column(column)
        for item in loaded:
            outcome = client.registry.push(
                item.spec, source=item.source, author=client.settings.actor, message=message
            )
            changes = "; ".join(c.what for c in outcome.report.changes) if outcome.report else ""
            table.add_row(
                escape(item.spec.name),
                item.spec.version,
                "[green]created[/]" if outcome.created else "[dim]unchanged[/]",
                outcome.previous or "-",
                escape(changes),
            )
        stdout.print(table)


@app.command("list")
def list_prompts(config: ConfigOption = None) -> None:
    """Registered prompts with their latest version and labels."""
    with reported_errors(), open_client(config) as client:
        table = Table(title="prompts")
        for column in ("prompt", "latest", "versions", "labels"):
            table.add_column(column)
        for summary in client.registry.summaries():
            labels = ", ".join(f"{k}→{v}" for k, v in sorted(summary.labels.items()))
            table.add_row(
                escape(summary.name), summary.latest, str(summary.versions), escape(labels)
            )
        stdout.print(table)


@app.command()
def show(
    name: str,
    ref: Annotated[str | None, typer.Argument(help="version or label (default: latest)")] = None,
    config: ConfigOption = None,
) -> None:
    """Show one version: metadata and the spec as pushed."""
    with reported_errors(), open_client(config) as client:
        found = _resolve(client, name, ref)
        labels = [k for k, v in client.registry.labels(name).items() if v == found.version]
        stdout.print(
            f"[bold]{escape(found.name)}[/] {found.version}  hash {found.content_hash[:12]}  "
            f"by {escape(found.author)} at {found.created_at:%Y-%m-%d %H:%M:%S}Z"
            + (f"  labels: {escape(', '.join(labels))}" if labels else "")
        )
        if found.message:
            stdout.print(escape(found.message))
        stdout.print(Syntax(found.source, "yaml", word_wrap=True))


@app.command()
def diff(
    name: str,
    old: Annotated[str, typer.Argument(help="version or label")],
    new: Annotated[str, typer.Argument(help="version, label, or a spec file path")],
    config: ConfigOption = None,
) -> None:
    """Template and contract differences between two versions (or a version and a file)."""
    with reported_errors(), open_client(config) as client:
        before = _resolve(client, name, old)
        if Path(new).is_file():
            loaded = load_spec(new, model_modules=client.settings.prompt_model_modules)
            after_spec, after_source, after_name = loaded.spec, loaded.source, new
        else:
            found = _resolve(client, name, new)
            after_spec, after_source, after_name = found.spec, found.source, found.version
        report = compare(
            before.spec, after_spec, model_modules=client.settings.prompt_model_modules
        )
        if report.edits:
            stdout.print("[bold]schema edits[/]")
            for edit in report.edits:
                stdout.print(f"  {escape(edit)}", soft_wrap=True)
        # Each row says what a change does to consumers (outputs) or callers (inputs).
        table = Table(title=f"{escape(name)}: {before.version} → {after_spec.version}")
        table.add_column("bump needed")
        table.add_column("why")
        for change in report.changes:
            table.add_row(change.bump.name.lower(), escape(change.what))
        stdout.print(table)
        stdout.print(f"needs at least a [bold]{report.needed.name.lower()}[/] bump")
        lines = difflib.unified_diff(
            before.source.splitlines(keepends=True),
            after_source.splitlines(keepends=True),
            fromfile=f"{name}@{before.version}",
            tofile=f"{name}@{after_name}",
        )
        text = "".join(lines)
        if text:
            stdout.print(Syntax(text, "diff", word_wrap=True))


@app.command()
def label(
    name: str,
    version: str,
    label_name: Annotated[str, typer.Argument(metavar="LABEL")],
    reason: Reason = "",
    config: ConfigOption = None,
) -> None:
    """Point a label (production, staging, ...) at a version; the move is recorded."""
    with reported_errors(), open_client(config) as client:
        event = client.registry.set_label(
            name, label_name, version, actor=client.settings.actor, reason=reason
        )
        stdout.print(
            f"{escape(name)} [bold]{escape(label_name)}[/]: "
            f"{event.from_version or '-'} → {event.to_version}"
        )


@app.command()
def rollback(
    name: str,
    label_name: Annotated[str, typer.Argument(metavar="LABEL")],
    reason: Reason = "",
    config: ConfigOption = None,
) -> None:
    """Point a label back at the version it had before its last move."""
    with reported_errors(), open_client(config) as client:
        event = client.registry.rollback(
            name, label_name, actor=client.settings.actor, reason=reason
        )
        stdout.print(
            f"{escape(name)} [bold]{escape(label_name)}[/] rolled back: "
            f"{event.from_version} → {event.to_version}"
        )


@app.command()
def history(name: str, config: ConfigOption = None) -> None:
    """Every version and every label move of a prompt."""
    with reported_errors(), open_client(config) as client:
        versions = client.registry.versions(name)
        if not versions:
            client.registry.get(name)  # raises PromptNotFound
        table = Table(title=f"{escape(name)}: versions")
        for column in ("version", "hash", "author", "at (UTC)", "message"):
            table.add_column(column)
        for v in versions:
            table.add_row(
                v.version,
                v.content_hash[:12],
                escape(v.author),
                f"{v.created_at:%Y-%m-%d %H:%M:%S}",
                escape(v.message),
            )
        stdout.print(table)
        moves = Table(title=f"{escape(name)}: label moves")
        for column in ("at (UTC)", "label", "from", "to", "kind", "by", "reason"):
            moves.add_column(column)
        for e in client.registry.label_history(name):
            moves.add_row(
                f"{e.at:%Y-%m-%d %H:%M:%S}",
                escape(e.label),
                e.from_version or "-",
                e.to_version,
                e.kind,
                escape(e.actor),
                escape(e.reason),
            )
        stdout.print(moves)


@app.command()
def run(
    prompt: Annotated[str, typer.Argument(help="a spec file, or a registered prompt name")],
    inputs: Annotated[str, typer.Option("--inputs", "-i", help="inputs as a JSON object")] = "{}",
    label: Annotated[str, typer.Option(help="label to run when PROMPT is a name")] = "production",
    version: Annotated[str | None, typer.Option(help="version to run instead of a label")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="model or router:NAME")] = None,
    meta: Annotated[bool, typer.Option(help="print tokens, cost, route to stderr")] = False,
    cache: CacheOption = CacheUse.use,
    config: ConfigOption = None,
) -> None:
    """Run a prompt once (through the same pipeline as the library and the gateway) and print
    its validated output as JSON."""
    with reported_errors():
        values = _inputs(inputs)
        with open_client(config) as client:
            if Path(prompt).is_file():
                modules = client.settings.prompt_model_modules
                compiled = load_spec(prompt, model_modules=modules).compiled
                result = client.run_compiled(compiled, values, model=model, cache=cache.value)
            else:
                result = client.run(
                    prompt, values, label=label, version=version, model=model, cache=cache.value
                )
        stdout.print_json(json.dumps(jsonable(result.output)))
        if meta:
            usage = result.usage
            stderr.print(
                f"{result.provider}/{result.model}: {usage.input_tokens} in + "
                f"{usage.output_tokens} out tokens, ${result.cost_usd:.6f}, "
                f"{len(result.attempts)} attempt(s)",
                highlight=False,
            )


def _inputs(text: str) -> dict[str, object]:
    fix = """pass a JSON object, e.g. --inputs '{"comment": "..."}'"""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"--inputs is not JSON: {exc}", param="--inputs", fix=fix) from None
    if not isinstance(values, dict):
        raise InvalidRequest("--inputs must be a JSON object", param="--inputs", fix=fix)
    return values


@app.command()
def tokens(
    prompt: Annotated[str, typer.Argument(help="a spec file, or a registered prompt name")],
    ref: Annotated[str | None, typer.Option(help="version or label when PROMPT is a name")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m")] = None,
    inputs: Annotated[
        str | None, typer.Option(help="inputs as a JSON object (default: the first test case's)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Tokens of the request that would be sent, per part, and the cost of 1,000 calls."""
    with reported_errors(), open_client(config) as client:
        if Path(prompt).is_file():
            modules = client.settings.prompt_model_modules
            compiled = load_spec(prompt, model_modules=modules).compiled
        else:
            compiled = client.registry.compiled(_resolve(client, prompt, ref))
        values = json.loads(inputs) if inputs else sample_inputs(compiled)
        plan = client.compiled_plan(compiled, values, model=model)
        report = token_report(compiled, plan, values)
        table = Table(
            title=f"{escape(compiled.spec.name)} {compiled.spec.version} on "
            f"{plan.provider.kind}/{plan.provider.model}"
        )
        table.add_column("part")
        table.add_column("tokens", justify="right")
        table.add_column("share", justify="right")
        table.add_column("count")
        total = max(report.input_tokens, 1)
        for part in report.parts:
            table.add_row(
                escape(part.name),
                str(part.tokens),
                f"{part.tokens / total:.0%}",
                "exact" if part.exact else "[yellow]estimate[/]",
            )
        table.add_row(
            "[bold]input total[/]",
            f"[bold]{report.input_tokens}[/]",
            "100%",
            "exact" if report.exact else "[yellow]estimate[/]",
        )
        table.add_row("expected output", str(report.output_tokens), "", "")
        stdout.print(table)
        stdout.print(f"tokenizer: {escape(report.tokenizer)}")
        stdout.print(f"cost per 1,000 calls: ${report.cost_per_1000_calls(plan.price):.4f}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="prompts")
