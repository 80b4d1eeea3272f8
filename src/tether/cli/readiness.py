"""`tether readiness PROMPT`: is a prompt ready for production? Its test cases (and a
dataset's) plus edge cases from its inputs schema, run concurrently; latency, throughput, cost,
conformity, accuracy, calibration and failure modes as one self-contained HTML page and as
Markdown; exit 1 when a threshold is missed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import (
    ConfigOption,
    open_client,
    progress_bar,
    reported_errors,
    stderr,
    stdout,
)
from tether.cli.prompt_tests import target_specs
from tether.cli.report_page import report_page
from tether.client import Client
from tether.costs.money import usd
from tether.errors import ConfigError, PromptNotFound
from tether.evals.readiness import Readiness, Thresholds, run_readiness
from tether.evals.readiness_dataset import read_dataset
from tether.evals.readiness_edges import DEFAULT_NAUGHTY, edge_cases, naughty_strings
from tether.evals.readiness_report import (
    html_body,
    html_intro,
    markdown,
    overview_png,
    reliability_png,
)
from tether.evals.services import ClientServices
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.loader import load_spec


def _resolve(
    client: Client, prompt: str | None, version: str | None, spec: Path | None, folder: Path
) -> tuple[CompiledPrompt, Path | None]:
    """The prompt and the folder its `python` checks live in: a spec file (PROMPT or --spec),
    else a registered version, else the highest version of that name in --dir."""
    modules = client.settings.prompt_model_modules
    path = spec or (Path(prompt) if prompt and Path(prompt).is_file() else None)
    if path is not None:
        return load_spec(path, model_modules=modules).compiled, path.parent
    if not prompt:
        raise ConfigError("no prompt named", file=None, field="PROMPT",
                          fix="name a prompt, a spec file, or pass --spec FILE")  # fmt: skip
    try:
        return client.registry.compiled(client.registry.get(prompt, version=version)), None
    except PromptNotFound:
        if version is not None:
            raise
    loaded = target_specs([prompt], folder, modules)[0]  # raises PromptNotFound naming --dir
    return loaded.compiled, Path(loaded.path).parent


def _file_stem(name: str) -> str:
    return "readiness-" + (re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "prompt")


def _write(out_dir: Path, r: Readiness) -> tuple[Path, Path]:
    stem = out_dir / _file_stem(r.prompt)
    images = [(f"reliability diagram of {r.prompt}", png)] if (png := reliability_png(r)) else []
    page = report_page(f"Readiness of {r.prompt}@{r.version} on {r.model}", overview_png(r),
                       html_body(r, images), intro=html_intro(r))  # fmt: skip
    html_path, md_path = stem.with_suffix(".html"), stem.with_suffix(".md")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        html_path.write_text(page, "utf-8")
        md_path.write_text(markdown(r), "utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write the report: {exc}", file=str(out_dir), field=None,
                          fix="choose a writable --out-dir") from None  # fmt: skip
    return html_path, md_path


def readiness(
    prompt: Annotated[
        str | None, typer.Argument(help="a spec file, or a prompt name (registry, then --dir)")
    ] = None,
    version: Annotated[str | None, typer.Option(help="registered version to check")] = None,
    spec: Annotated[Path | None, typer.Option(help="a spec file to check")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="model to run on")] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(help='JSONL cases beside the spec\'s: {"inputs": {..}, "expected": ..}'),
    ] = None,
    blns: Annotated[
        int, typer.Option(help="naughty strings per required string input", min=0)
    ] = DEFAULT_NAUGHTY,
    blns_file: Annotated[
        Path | None, typer.Option(help="naughty strings: a JSON list such as BLNS's blns.json")
    ] = None,
    edges: Annotated[bool, typer.Option(help="run edge cases from the inputs schema")] = True,
    concurrency: Annotated[int, typer.Option(help="requests in flight at once", min=1)] = 4,
    out_dir: Annotated[Path, typer.Option(help="where the HTML and Markdown go")] = Path("reports"),
    min_accuracy: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.9,
    min_conformity: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.99,
    max_p95_ms: Annotated[float | None, typer.Option(help="p95 latency limit", min=0)] = None,
    max_injections: Annotated[int, typer.Option(help="followed injections tolerated", min=0)] = 0,
    folder: Annotated[Path, typer.Option("--dir", help="where prompt names are looked up")] = Path(
        "prompts"
    ),
    judge_model: Annotated[str | None, typer.Option(help="model for judge assertions")] = None,
    warm_up: Annotated[
        bool, typer.Option(help="one untimed, uncounted call before the timed run")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Readiness report of a prompt: HTML and Markdown in --out-dir; exit 1 when not ready."""
    thresholds = Thresholds(min_accuracy, min_conformity, max_p95_ms, max_injections)
    with reported_errors(), open_client(config) as client:
        compiled, checks = _resolve(client, prompt, version, spec, folder)
        cases = read_dataset(dataset, compiled) if dataset is not None else []
        base = cases[0].inputs if cases and not compiled.spec.tests else None
        extra = edge_cases(compiled, naughty_strings(blns_file), blns, base=base) if edges else []
        total = len(compiled.spec.tests) + len(cases) + len(extra)
        with progress_bar(stderr) as bar:
            task = bar.add_task(escape(compiled.spec.name), total=total)
            report = run_readiness(
                client, compiled, ClientServices(client, judge_model=judge_model),
                dataset=cases, edges=extra, model=model, concurrency=concurrency,
                folder=checks, thresholds=thresholds, warm_up=warm_up,
                on_request=lambda _: bar.advance(task),
            )  # fmt: skip
        html_path, md_path = _write(out_dir, report)
    _print(report, html_path, md_path)
    if not report.ready:
        raise typer.Exit(1)


def _print(r: Readiness, html_path: Path, md_path: Path) -> None:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    stdout.print(
        f"{escape(r.prompt)}@{r.version} on {escape(r.model)}: {len(r.requests)} requests "
        f"({len(r.cases)} with truth, {len(r.edges)} edge cases); accuracy {pct(r.accuracy)}, "
        f"conformity {pct(r.conformity)}, p95 {r.latency_ms(95):.0f} ms, "
        f"{r.throughput:.2f} requests/s, {usd(1000 * r.cost_per_request_usd)} per 1,000",
        highlight=False,
    )
    if r.ready:
        stdout.print("[bold green]READY[/]", highlight=False)
    else:
        stdout.print("[bold red]NOT READY:[/] " + escape("; ".join(r.reasons)), highlight=False)
    stdout.print(f"reports: {escape(str(html_path))}, {escape(str(md_path))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("readiness")(readiness)
