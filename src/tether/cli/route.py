"""`tether route`: train a learned router, evaluate it, explain one decision.

tether route train --data outcomes.jsonl --out routers/support.npz
tether route train --prompt support_reply --cheap small --premium large --out r.npz
tether route eval routers/support.npz [--data held_out.jsonl]
tether route explain "How do I reset my password?" --router support
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, cast

import numpy as np
import typer
from rich.markup import escape
from rich.progress import (
    TaskID,
)
from rich.table import Table

from tether.cache.embedders.registry import create_embedder
from tether.cli.common import ConfigOption, open_client, progress_bar, reported_errors, stdout
from tether.errors import ConfigError, PromptNotFound
from tether.messages import Message
from tether.prompts.loader import LoadedSpec, load_spec, spec_files
from tether.routing.base import RouteInput, RoutePolicy
from tether.routing.learned.dataset import Outcomes, check_outcomes, read_outcomes
from tether.routing.learned.embedding import (
    DEFAULT_EMBEDDING,
    EMBEDDINGS,
    Embedding,
    NoEmbedding,
)
from tether.routing.learned.evaluation import Curve, cost_quality_curve
from tether.routing.learned.features import text_features
from tether.routing.learned.model import TrainedRouter
from tether.routing.learned.train import TrainOptions, embed_texts, route_text, train_router
from tether.routing.policies.learned import LearnedPolicy, embedder_for
from tether.routing.registry import build_policy
from tether.settings import Settings

app = typer.Typer(
    help="Routing: train, evaluate and explain learned routers.", no_args_is_help=True
)

EmbedderOption = Annotated[
    str, typer.Option(help="embedder kind the router reads requests with (minilm, fake)")
]


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="the router file to write (.npz)")],
    data: Annotated[
        Path | None,
        typer.Option(help="dataset: .jsonl or .csv with text, cheap_correct, premium_correct"),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(help="a prompt spec file or name: its test cases run on both models"),
    ] = None,
    from_log: Annotated[
        bool,
        typer.Option(
            "--from-log", help="the request log: texts both models answered, with feedback"
        ),
    ] = False,
    cheap: Annotated[
        str | None, typer.Option(help="cheap model (with --prompt or --from-log)")
    ] = None,
    premium: Annotated[
        str | None, typer.Option(help="premium model (with --prompt or --from-log)")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="with --from-log: requests logged from this time")
    ] = None,
    pass_score: Annotated[
        float, typer.Option(help="with --from-log: a feedback score at least this passes")
    ] = 0.5,
    folder: Annotated[Path, typer.Option("--dir", help="where prompt names are looked up")] = Path(
        "prompts"
    ),
    target_quality: Annotated[
        float | None,
        typer.Option(help="share of premium quality to keep (default 0.95)", min=0.0, max=1.0),
    ] = None,
    target_premium_share: Annotated[
        float | None, typer.Option(help="share of requests sent to premium", min=0.0, max=1.0)
    ] = None,
    folds: Annotated[int, typer.Option(help="held-out folds for choosing k and blend", min=2)] = 5,
    seed: Annotated[int, typer.Option(help="seed of the fold shuffle")] = 0,
    keep_texts: Annotated[
        bool,
        typer.Option(help="store the start of each training text in the file, for `route explain`"),
    ] = True,
    embedding: Annotated[
        str,
        typer.Option(
            help="how requests become vectors: minilm-static (the mean of MiniLM's token "
            "embeddings, about 1 ms), minilm (the transformer, about 15 ms) or none"
        ),
    ] = DEFAULT_EMBEDDING,
    max_tokens: Annotated[
        int | None, typer.Option(help="cut each text after this many tokens first", min=1)
    ] = None,
    embedder: EmbedderOption = "minilm",
    config: ConfigOption = None,
) -> None:
    """Train a router from a dataset file, a prompt's test cases or the request log; write the
    router file."""
    with reported_errors():
        if [data is not None, prompt is not None, from_log].count(True) != 1:
            raise ConfigError(
                "give exactly one of --data, --prompt and --from-log",
                file=None,
                field=None,
                fix="--data FILE, or --prompt NAME (or --from-log) --cheap MODEL --premium MODEL",
            )
        if target_quality is not None and target_premium_share is not None:
            raise ConfigError(
                "give at most one of --target-quality and --target-premium-share",
                file=None,
                field=None,
                fix="drop one of them",
            )
        if data is not None:
            outcomes = read_outcomes(data)
        elif prompt is not None:
            outcomes = _from_prompt(prompt, _models(cheap, premium), folder, config)
        else:
            outcomes = _from_log(_models(cheap, premium), since, pass_score, config)
        if embedding not in EMBEDDINGS:
            raise ConfigError(
                f"unknown --embedding {embedding!r}",
                file=None,
                field="--embedding",
                fix=f"use one of: {', '.join(EMBEDDINGS)}",
            )
        options = TrainOptions(
            folds=folds,
            seed=seed,
            target_quality=target_quality,
            target_premium_share=target_premium_share,
            keep_texts=keep_texts,
            embedding=cast(Embedding, embedding),
            max_tokens=max_tokens,
        )
        # Only the transformer embedding runs the sentence model named by --embedder.
        encoder = create_embedder(embedder) if embedding == "minilm" else NoEmbedding()
        with progress_bar() as bar:
            tasks: dict[str, TaskID] = {}

            def report(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bar.add_task(step, total=total)
                bar.update(tasks[step], completed=done)

            router = train_router(outcomes, encoder, options, progress=report)
        router.save(out)
        _print_summary(router, out)


def _models(cheap: str | None, premium: str | None) -> tuple[str, str]:
    if cheap is None or premium is None:
        raise ConfigError(
            "--prompt and --from-log need --cheap and --premium",
            file=None,
            field=None,
            fix="name the two models the router chooses between",
        )
    return cheap, premium


def _from_log(
    models: tuple[str, str], since: datetime | None, pass_score: float, config: Path | None
) -> Outcomes:
    from tether.routing.learned.from_log import pair_outcomes
    from tether.store.engine import open_database
    from tether.store.route_outcomes import logged_outcomes

    settings = Settings.load(config)
    engine = open_database(settings.database)
    try:
        logged = logged_outcomes(engine, models, since=since, pass_score=pass_score)
    finally:
        engine.dispose()
    paired = pair_outcomes(logged, cheap=models[0], premium=models[1])
    stdout.print(
        f"request log: {len(logged)} judged answers; {len(paired.outcomes)} texts answered by "
        f"both models, {paired.one_model_only} by one only (left out)",
        highlight=False,
    )
    return check_outcomes(paired.outcomes, "request log")


def _from_prompt(
    prompt: str, models: tuple[str, str], folder: Path, config: Path | None
) -> Outcomes:
    from tether.routing.learned.from_prompt import outcomes_from_tests

    cheap, premium = models
    with open_client(config) as client:
        loaded = _find_spec(prompt, folder, client.settings.prompt_model_modules)
        with progress_bar() as bar:
            task = bar.add_task(
                f"running {loaded.spec.name} tests", total=2 * len(loaded.spec.tests)
            )
            return outcomes_from_tests(
                client, loaded, cheap=cheap, premium=premium, on_case=lambda _: bar.advance(task)
            )


def _find_spec(prompt: str, folder: Path, modules: Sequence[str]) -> LoadedSpec:
    """A spec file as given, or the highest version of the prompt named so in `folder`."""
    if Path(prompt).is_file():
        return load_spec(prompt, model_modules=modules)
    found = [
        loaded
        for loaded in (load_spec(p, model_modules=modules) for p in spec_files([folder]))
        if loaded.spec.name == prompt
    ]
    if not found:
        raise PromptNotFound(f"{prompt} (no spec file in {folder})")
    return max(found, key=lambda loaded: loaded.spec.semver)


def _print_summary(router: TrainedRouter, out: Path) -> None:
    info = router.info
    stdout.print(
        f"wrote {escape(str(out))}: {info.get('rows')} rows, cheap passes "
        f"{info.get('cheap_accuracy', 0):.1%}, premium {info.get('premium_accuracy', 0):.1%}; "
        f"k={router.k}, blend={router.blend:g}; held-out APGR {info.get('held_out_apgr', 0):.3f}; "
        f"threshold {router.threshold:.3f} (premium when the expected gain is above it)",
        highlight=False,
    )


@app.command("eval")
def evaluate(
    router_file: Annotated[Path, typer.Argument(help="the router file")],
    data: Annotated[
        Path | None,
        typer.Option(help="held-out dataset; default: the file's own held-out training scores"),
    ] = None,
    embedder: EmbedderOption = "minilm",
) -> None:
    """APGR, the cost-quality table and the premium share for 50% / 80% of the quality gap."""
    with reported_errors():
        router = TrainedRouter.load(router_file)
        if data is None:
            scores = router.holdout_scores.astype(np.float64)
            cheap, premium, source = router.cheap, router.premium, "held-out training folds"
        else:
            encoder = embedder_for(router, embedder, path=router_file, field="--data")
            outcomes = read_outcomes(data)
            texts = [route_text(t) for t in outcomes.texts]
            predictions = router.predict(embed_texts(encoder, texts), text_features(texts))
            scores = np.array([p.gain for p in predictions])
            cheap, premium = np.asarray(outcomes.cheap), np.asarray(outcomes.premium)
            source = str(data)
        curve = cost_quality_curve(scores, cheap, premium)
        stdout.print(_curve_table(curve, f"{router_file.name} on {source} ({len(scores)} rows)"))
        half, most = curve.share_for_gap(0.5), curve.share_for_gap(0.8)
        stdout.print(
            f"APGR {curve.apgr():.3f} (random 0.5); premium calls for 50% of the quality gap: "
            f"{_share(half)}, for 80%: {_share(most)}; cheap {curve.cheap_accuracy:.1%}, "
            f"premium {curve.premium_accuracy:.1%}",
            highlight=False,
        )


def _share(value: float | None) -> str:
    return "never" if value is None else f"{value:.0%}"


def _curve_table(curve: Curve, title: str) -> Table:
    table = Table(title=escape(title))
    for column in ("gain threshold", "premium calls", "accuracy", "gap recovered"):
        table.add_column(column, justify="right")
    for point in curve.points():
        recovered = (point["accuracy"] - curve.cheap_accuracy) / curve.gap if curve.gap else 0.0
        table.add_row(
            f"{point['threshold']:.3f}",
            f"{point['premium_share']:.0%}",
            f"{point['accuracy']:.1%}",
            f"{recovered:.0%}",
        )
    return table


@app.command()
def explain(
    text: Annotated[str, typer.Argument(help="the user's message")],
    router: Annotated[
        str | None, typer.Option(help="a router name from the settings ([routers.NAME])")
    ] = None,
    router_file: Annotated[
        Path | None, typer.Option("--file", help="a router file, without settings")
    ] = None,
    neighbours: Annotated[int, typer.Option(help="nearest training requests to show")] = 5,
    embedder: EmbedderOption = "minilm",
    config: ConfigOption = None,
) -> None:
    """The decision for TEXT, its reason, and (learned routers) the nearest training requests."""
    with reported_errors():
        request = RouteInput(messages=(Message("user", text),))
        if router_file is not None:
            trained = TrainedRouter.load(router_file)
            policy: RoutePolicy = LearnedPolicy(
                trained,
                embedder_for(trained, embedder, path=router_file, field="--file"),
                cheap="cheap",
                premium="premium",
            )
        elif router is not None:
            with open_client(config) as client:
                policy = build_policy(router, client.settings)
        else:
            raise ConfigError(
                "give --router NAME or --file ROUTER_FILE",
                file=None,
                field=None,
                fix="name a [routers.NAME] table, or a file from `tether route train`",
            )
        if not isinstance(policy, LearnedPolicy):
            decision = policy.decide(request)
            stdout.print(_decision_line(decision.model, decision.answer, decision.reason))
            return
        scored = policy.score(request, neighbours=neighbours)
        decision = scored.decision
        stdout.print(_decision_line(decision.model, decision.answer, decision.reason))
        if scored.prediction is None or not scored.prediction.neighbours:
            return
        table = Table(title="nearest training requests")
        for column in ("cosine", "cheap", "premium", "text"):
            table.add_column(column, overflow="fold")
        trained = policy.router
        for row, similarity in scored.prediction.neighbours:
            table.add_row(
                f"{similarity:.3f}",
                "pass" if trained.cheap[row] else "[red]fail[/]",
                "pass" if trained.premium[row] else "[red]fail[/]",
                escape(trained.texts[row] if row < len(trained.texts) else ""),
            )
        stdout.print(table)


def _decision_line(model: str | None, answer: str | None, reason: str) -> str:
    target = f"answer {answer!r}" if model is None else f"model {model}"
    return f"[bold]{escape(target)}[/]: {escape(reason)}"


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="route")
