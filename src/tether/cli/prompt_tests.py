"""`tether test`: run prompt test cases against a model; reports for people and for CI."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from tether.cli.common import ConfigOption, open_client, reported_errors, stdout
from tether.errors import PromptNotFound
from tether.evals.reports import write_json, write_junit
from tether.evals.runner import CaseResult, run_tests
from tether.evals.services import ClientServices
from tether.prompts.loader import LoadedSpec, load_spec, spec_files


def target_specs(names: list[str], folder: Path, modules: Sequence[str]) -> list[LoadedSpec]:
    """Paths as given; a bare name is the highest version of that prompt in `folder`."""
    chosen: list[LoadedSpec] = []

    def load(path: Path) -> LoadedSpec:
        return load_spec(path, model_modules=modules)

    for target in names or [str(folder)]:
        if Path(target).exists():
            chosen += [load(p) for p in spec_files([target], recursive=True)]
            continue
        candidates = [
            s for s in map(load, spec_files([folder], recursive=True)) if s.spec.name == target
        ]
        if not candidates:
            raise PromptNotFound(f"{target} (no spec file in {folder})")
        chosen.append(max(candidates, key=lambda s: s.spec.semver))
    return chosen


def run_prompt_tests(
    prompts: Annotated[
        list[str] | None, typer.Argument(help="prompt names, spec files or folders")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="model to test on")] = None,
    folder: Annotated[Path, typer.Option("--dir", help="where prompt names are looked up")] = Path(
        "prompts"
    ),
    junit: Annotated[Path, typer.Option(help="JUnit XML report")] = Path(
        "reports/prompt-tests.xml"
    ),
    json_report: Annotated[Path, typer.Option("--json", help="JSON report")] = Path(
        "reports/prompt-tests.json"
    ),
    judge_model: Annotated[str | None, typer.Option(help="model for judge assertions")] = None,
    config: ConfigOption = None,
) -> None:
    """Run the test cases of prompt spec files; exit 1 if any assertion fails."""
    with reported_errors(), open_client(config) as client:
        specs = target_specs(prompts or [], folder, client.settings.prompt_model_modules)
        services = ClientServices(client, judge_model=judge_model)
        results: list[CaseResult] = []
        total = sum(len(s.spec.tests) for s in specs)
        with Progress(console=stdout, transient=True) as progress:
            task = progress.add_task("testing prompts", total=total)
            for loaded in specs:
                results += run_tests(
                    client,
                    loaded.compiled,
                    services,
                    model=model,
                    folder=Path(loaded.path).parent,
                    on_case=lambda _: progress.advance(task),
                )
        write_junit(results, junit)
        write_json(results, json_report)
        stdout.print(_table(results))
        failed = sum(1 for r in results if not r.passed)
        stdout.print(
            f"{len(results) - failed} passed, {failed} failed (reports: {junit}, {json_report})",
            highlight=False,
        )
        if failed or not results:
            raise typer.Exit(1)


def _table(results: list[CaseResult]) -> Table:
    table = Table(title="prompt tests")
    for column in ("prompt", "case", "model", "assertion", "result", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        for index, a in enumerate(r.assertions):
            first = index == 0
            table.add_row(
                escape(f"{r.prompt}@{r.version}") if first else "",
                escape(r.case) if first else "",
                escape(r.model) if first else "",
                escape(a.label),
                "[green]pass[/]" if a.outcome.passed else "[bold red]FAIL[/]",
                escape(a.outcome.detail),
            )
    return table


def register(app: typer.Typer) -> None:
    app.command("test")(run_prompt_tests)
