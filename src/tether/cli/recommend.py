"""`tether models recommend PROMPT`: run a prompt's test cases on every candidate model and name
the cheapest one that passes enough of them (tether.evals.advisor does the weighing)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    Progress,
    TaskID,
)
from rich.table import Table

from tether.cli.common import (
    ConfigOption,
    open_client,
    progress_bar,
    reported_errors,
    stderr,
    stdout,
)
from tether.cli.frontier_chart import write_frontier
from tether.cli.prompt_tests import target_specs
from tether.client import Client
from tether.costs.money import usd
from tether.errors import ConfigError
from tether.evals.advisor import (
    DEFAULT_THRESHOLD,
    Advice,
    ModelScore,
    advise,
    candidate_models,
    meets,
    score_model,
)
from tether.evals.case_file import read_cases, with_cases
from tether.evals.runner import CaseResult
from tether.evals.services import ClientServices
from tether.prompts.loader import LoadedSpec

ModelsOption = Annotated[
    str | None,
    typer.Option(
        help="models to compare, comma-separated (default: every chat model whose pre-flight "
        "accepts the prompt's output contract)"
    ),
]
DatasetOption = Annotated[
    Path | None,
    typer.Option(help='JSONL cases in place of the spec\'s: {"inputs": {..}, "expected": ..}'),
]


def recommend(
    prompt: Annotated[str, typer.Argument(help="a prompt spec file, or a prompt name in --dir")],
    models: ModelsOption = None,
    dataset: DatasetOption = None,
    threshold: Annotated[
        float,
        typer.Option(help="pass rate the recommended model must reach", min=0.0, max=1.0),
    ] = DEFAULT_THRESHOLD,
    plot: Annotated[
        Path | None, typer.Option(help="write the cost-quality frontier to PATH.png and .html")
    ] = None,
    folder: Annotated[Path, typer.Option("--dir", help="where prompt names are looked up")] = Path(
        "prompts"
    ),
    judge_model: Annotated[str | None, typer.Option(help="model for judge assertions")] = None,
    warm_up: Annotated[
        bool, typer.Option(help="one untimed, uncounted call per model before its cases")
    ] = True,
    config: ConfigOption = None,
) -> None:
    """Compare models on a prompt's test cases: pass rate, cost, latency; recommend the cheapest
    model that meets the threshold (exit 1 when none does)."""
    with reported_errors(), open_client(config) as client:
        loaded = _load(client, prompt, folder, dataset)
        requested = [m.strip() for m in models.split(",") if m.strip()] if models else None
        chosen, skipped = candidate_models(client, loaded.compiled, requested)
        for skip in skipped:
            stderr.print(
                f"[yellow]skipped {escape(skip.model)}:[/] {escape(skip.reason)}",
                highlight=False,
                soft_wrap=True,
            )
        if not chosen:
            raise ConfigError(
                "no model can run this prompt",
                file=loaded.path,
                field=None,
                fix="configure a chat model whose pre-flight accepts its output contract",
            )
        services = ClientServices(client, judge_model=judge_model)
        scores = _score_all(client, loaded, services, chosen, warm_up=warm_up)
        advice = advise(scores, skipped, threshold)
        spec = loaded.compiled.spec
        title = f"{spec.name}@{spec.version}: {len(spec.tests)} cases"
        stdout.print(_table(advice, title))
        if plot is not None:
            png, page = _write_plot(plot, advice, title)
            stdout.print(f"plot: {escape(str(png))}, {escape(str(page))}", highlight=False)
        _verdict(advice)


def _load(client: Client, prompt: str, folder: Path, dataset: Path | None) -> LoadedSpec:
    """The one spec PROMPT names, with the dataset's cases in place of its own if given."""
    targets = target_specs([prompt], folder, client.settings.prompt_model_modules)
    if len(targets) != 1:
        raise ConfigError(
            f"{len(targets)} spec files found",
            file=prompt,
            field=None,
            fix="name one spec file or one prompt",
        )
    loaded = targets[0]
    if dataset is not None:
        compiled = with_cases(loaded.compiled, read_cases(dataset, loaded.compiled))
        loaded = LoadedSpec(compiled.spec, compiled, loaded.source, loaded.path)
    if not loaded.spec.tests:
        raise ConfigError(
            "the prompt has no test cases",
            file=loaded.path,
            field="tests",
            fix="add cases under `tests:` or pass --dataset FILE.jsonl",
        )
    return loaded


def _score_all(
    client: Client,
    loaded: LoadedSpec,
    services: ClientServices,
    models: Sequence[str],
    *,
    warm_up: bool,
) -> list[ModelScore]:
    cases = len(loaded.spec.tests)
    scores = []
    with progress_bar(stderr) as bar:
        for name in models:
            task = bar.add_task(escape(name), total=cases)
            scores.append(
                score_model(
                    client,
                    loaded.compiled,
                    services,
                    name,
                    folder=Path(loaded.path).parent,
                    on_case=_advancing(bar, task),
                    warm_up=warm_up,
                )
            )
    return scores


def _advancing(bar: Progress, task: TaskID) -> Callable[[CaseResult], None]:
    return lambda _: bar.advance(task)


def _write_plot(plot: Path, advice: Advice, title: str) -> tuple[Path, Path]:
    try:
        return write_frontier(plot, advice, title)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the plot: {exc}",
            file=str(plot),
            field=None,
            fix="choose a writable path",
        ) from None


def _table(advice: Advice, title: str) -> Table:
    table = Table(title=escape(title))
    columns = ("model", "pass rate", "errors", "$ / request", "$ / 1,000", "p50 latency",
               "p95 latency", "frontier")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    chosen = advice.recommended.model if advice.recommended else None
    for s in advice.scores:
        colour = "green" if meets(s, advice.threshold) else "red"
        table.add_row(
            f"[bold green]{escape(s.model)} *[/]" if s.model == chosen else escape(s.model),
            f"[{colour}]{s.passed}/{s.cases} ({s.pass_rate:.0%})[/]",
            str(s.errors),
            usd(s.mean_cost_usd),
            usd(s.cost_per_1000_usd),
            f"{s.p50_latency_s * 1000:.0f} ms",
            f"{s.p95_latency_s * 1000:.0f} ms",
            "yes" if s.model in advice.frontier else "",
        )
    return table


def _verdict(advice: Advice) -> None:
    best = advice.recommended
    if best is None:
        top = max(advice.scores, key=lambda s: s.pass_rate)
        stdout.print(
            f"[bold red]no model meets the threshold[/] of {advice.threshold:.0%} "
            f"(best: {escape(top.model)} at {top.pass_rate:.0%})",
            highlight=False,
        )
        raise typer.Exit(1)
    stdout.print(
        f"recommended: [bold green]{escape(best.model)}[/] passes {best.pass_rate:.0%} "
        f"(threshold {advice.threshold:.0%}) at {usd(best.cost_per_1000_usd)} per 1,000 "
        "requests; Pareto frontier: " + ", ".join(sorted(map(escape, advice.frontier))),
        highlight=False,
    )
