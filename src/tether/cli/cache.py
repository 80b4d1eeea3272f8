"""`tether cache`: what the response cache holds and saves, dropping entries, calibration.

tether cache stats [--prompt P] [--since 7d] [--json]
tether cache invalidate --prompt support_reply [--version 1.2.0] [--tag faq] [--older-than 2h]
tether cache calibrate support_reply --pairs graded.csv --delta 0.01 --delta 0.02
tether cache fit-scorer pairs.csv --out scorer.json

The commands open the configured backend themselves: the local backend's file is shared with a
running gateway (it applies invalidations written there within about a second) and Redis is
shared by every replica, so nothing here needs the gateway to be up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli.common import ConfigOption, reported_errors, stdout
from tether.errors import ConfigError
from tether.runtime import Runtime
from tether.settings import Settings

app = typer.Typer(
    help="The response cache: stats, invalidation, calibration of semantic hits.",
    no_args_is_help=True,
)

DEFAULT_SINCE = "7d"


# Graded pairs: grades from this up are the same question, from this down a different one.
SameAt = Annotated[float, typer.Option(help="a grade at least this: the same question")]
DifferentAt = Annotated[float, typer.Option(help="a grade at most this: a different one")]


@app.command()
def stats(
    prompt: Annotated[str | None, typer.Option(help="only this prompt")] = None,
    since: Annotated[
        str, typer.Option(help="request log from: 7d, 24h, an ISO date or time (UTC)")
    ] = DEFAULT_SINCE,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
    config: ConfigOption = None,
) -> None:
    """Entries, hits, savings and each semantic prompt's calibration.

    The backend's entries (total, per prompt, size); from the request log, lookups, exact and
    semantic hits, the hit rate, money and time saved and the guards' vetoes; for each prompt
    cached by meaning, the threshold for its δ and where it came from."""
    from tether.cli.cache_report import gather, report_json

    start = _since(since)
    with reported_errors(), opened(config) as runtime:
        report = gather(runtime, prompt, start)
    if as_json:
        print(json.dumps(report_json(report), indent=2))
        return
    from tether.cli.cache_report import calibration_table, entries_table, use_table

    stdout.print(entries_table(report))
    stdout.print(use_table(report))
    if report.calibrations:
        stdout.print(calibration_table(report.calibrations, "semantic calibration"))
    elif report.semantic:
        stdout.print("semantic calibration: no prompt matches")
    else:
        stdout.print("semantic caching is off for every prompt (cache.mode and prompt specs)")


@app.command()
def invalidate(
    prompt: Annotated[str | None, typer.Option(help="entries of this prompt")] = None,
    version: Annotated[str | None, typer.Option(help="of this prompt version")] = None,
    tag: Annotated[
        str | None, typer.Option(help="carrying this tag (a prompt's cache.tags)")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", metavar="KEY_ID", help="filed for this API key")
    ] = None,
    model: Annotated[str | None, typer.Option(help="answered for this model name")] = None,
    older_than: Annotated[
        str | None, typer.Option(metavar="2h", help="filed longer ago than 45s, 90m, 2h, 7d, 2w")
    ] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="drop every entry (instead of selectors)")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Drop the entries every given selector matches.

    A running gateway stops serving them within about a second (local file) or at once
    (Redis). With no selector, --all is required."""
    from tether.cache.backends.base import Selector

    with reported_errors():
        age = _duration(older_than, "--older-than") if older_than is not None else None
        selector = Selector(
            prompt=prompt,
            version=version,
            tag=tag,
            scope=f"key:{key}" if key is not None else None,
            model=model,
            older_than_s=age,
        )
        if selector == Selector() and not everything:
            raise ConfigError(
                "say which entries to drop",
                file=None,
                field=None,
                fix="give --prompt, --version, --tag, --key, --model or --older-than, "
                "or --all to drop every entry",
            )
        if everything and selector != Selector():
            raise ConfigError(
                f"--all drops every entry, but selectors were given too ({selector.describe()})",
                file=None,
                field="--all",
                fix="leave out --all to drop only what the selectors match",
            )
        with opened(config) as runtime:
            dropped = runtime.call_sync(runtime.cache.invalidate, selector)
    noun = "entry" if dropped == 1 else "entries"
    stdout.print(f"dropped {dropped:,} {noun} ({escape(selector.describe())})")


@app.command()
def calibrate(
    prompt: Annotated[
        str | None, typer.Argument(help="the prompt the grades are for; none: calls without one")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="graded pairs: CSV rows `cached text, new text, grade` (0-5 or true/false)",
            metavar="FILE.csv",
        ),
    ] = None,
    delta: Annotated[
        list[float] | None,
        typer.Option(
            metavar="0.02",
            help="false-hit rate to calibrate for (repeat); default: the configured "
            "one and 0.01, 0.02, 0.05",
        ),
    ] = None,
    same_at: SameAt = 4.0,
    different_at: DifferentAt = 2.0,
    config: ConfigOption = None,
) -> None:
    """Add graded pairs to a prompt's grades; show its thresholds.

    The pairs are scored as the cache scores neighbours (its embedder and scorer, after its
    guards; vetoed pairs are left out) and stored as the prompt's grades. Without --pairs, the
    current calibration per δ, beside the bundled one."""
    from tether.cli.cache_calibration import calibrate_prompt

    for value in delta or []:
        if not 0 < value < 0.5:
            raise typer.BadParameter(f"{value:g} is not between 0 and 0.5", param_hint="--delta")
    with reported_errors(), opened(config) as runtime:
        calibrate_prompt(runtime, prompt, pairs, delta or [], (same_at, different_at))


@app.command("fit-scorer")
def fit_scorer(
    pairs: Annotated[
        Path, typer.Argument(help="graded pairs: CSV rows `text, text, grade` (0-5 or true/false)")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="the scorer file to write (.json)")],
    same_at: SameAt = 4.0,
    different_at: DifferentAt = 2.0,
    config: ConfigOption = None,
) -> None:
    """Fit a pair scorer on your own graded pairs.

    Uses the bundled MiniLM embedder and writes the scorer with its calibration grades. The
    bundled scorer was fitted the same way on STS-B's training pairs (>= 4.0 same, <= 2.0
    different). At least 40 usable pairs are needed, some same and some different."""
    from tether.cli.cache_calibration import fit_and_write

    with reported_errors():
        fit_and_write(pairs, out, (same_at, different_at), config)


# -- shared ---------------------------------------------------------------------------------


@contextmanager
def opened(config: Path | None) -> Iterator[Runtime]:
    """A runtime on the settings whose cache and database the commands work on; closing it
    writes what the local backend still holds to its file."""
    settings = Settings.load(config)
    runtime = Runtime(settings, log_requests=True)  # grades live in the database
    try:
        with _backend_errors(settings):
            yield runtime
    finally:
        with _backend_errors(settings):
            runtime.close()


@contextmanager
def _backend_errors(settings: Settings) -> Iterator[None]:
    """A backend that cannot be opened is a message saying which and what to check."""
    import sqlite3

    try:
        yield
    except Exception as exc:
        module = type(exc).__module__.partition(".")[0]
        if not isinstance(exc, OSError | sqlite3.Error) and module != "redis":
            raise
        cache = settings.cache
        if cache.backend == "redis":
            field, fix = "cache.redis_url", "check that Redis is running at cache.redis_url"
        else:
            field = "cache.path"
            fix = "check that the cache file's folder exists and is writable (cache.path)"
        raise ConfigError(
            f"cannot use the {cache.backend} cache backend: {exc}",
            file=settings.source,
            field=field,
            fix=fix,
        ) from None


def _since(text: str) -> datetime:
    from tether.cli.costs import parse_moment

    try:
        return parse_moment(text, now=datetime.now(UTC))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None


def _duration(text: str, option: str) -> float:
    from tether.server.keys import parse_duration

    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise ConfigError(
            str(exc), file=None, field=option, fix="one number and a unit: 45s, 90m, 2h, 7d or 2w"
        ) from None


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="cache")
