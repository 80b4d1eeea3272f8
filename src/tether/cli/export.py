"""`tether export finetune [--prompt P] [--verdict good] [--out file.jsonl]`: reviewed requests
as OpenAI chat fine-tuning JSONL, one `{"messages": [...]}` line per request: the rendered
prompt, then the answer as the assistant's message. A `needs-fix` review exports its corrected
output (and is skipped without one); `bad` reviews are never exported."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.markup import escape

from tether.cli.common import ConfigOption, reported_errors, stderr
from tether.errors import TetherError
from tether.settings import Settings
from tether.store.engine import open_database
from tether.store.reviews import ReviewedRequest, reviewed

app = typer.Typer(help="Export logged requests for use elsewhere.", no_args_is_help=True)

_ROLES = {"system", "user", "assistant", "tool"}


class Exported(StrEnum):
    good = "good"
    needs_fix = "needs-fix"


def _message(stored: dict[str, Any]) -> dict[str, Any]:
    kept = {"role": stored.get("role"), "content": stored.get("content")}
    if stored.get("name"):
        kept["name"] = stored["name"]
    return kept


def finetune_line(item: ReviewedRequest) -> dict[str, Any] | None:
    """One JSONL record, or None when the review gives nothing to learn from."""
    review, request = item.review, item.request
    if review.verdict == "good":
        answer = request.response
    elif review.verdict == "needs-fix":
        answer = review.corrected_output
    else:
        return None
    messages = [m for m in request.messages if m.get("role") in _ROLES]
    if not answer or not messages:
        return None
    return {"messages": [*map(_message, messages), {"role": "assistant", "content": answer}]}


def finetune_lines(items: Iterable[ReviewedRequest]) -> Iterator[dict[str, Any]]:
    for item in items:
        line = finetune_line(item)
        if line is not None:
            yield line


def _write(lines: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for line in lines:
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        count += 1
    return count


@app.command()
def finetune(
    prompt: Annotated[str | None, typer.Option(help="only this prompt's requests")] = None,
    verdict: Annotated[
        list[Exported] | None,
        typer.Option(help="reviews to export (repeat the option; default: good and needs-fix)"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="the JSONL file to write (default: standard output)")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write reviewed requests as chat fine-tuning JSONL (good answers and corrections)."""
    verdicts = [v.value for v in verdict] if verdict else [v.value for v in Exported]
    with reported_errors():
        settings = Settings.load(config)
        engine = open_database(settings.database)
        try:
            items = reviewed(engine, prompt=prompt, verdicts=verdicts)
        finally:
            engine.dispose()
        lines = list(finetune_lines(items))
        if out is None:
            count = _write(lines, sys.stdout)
        else:
            try:
                with out.open("w", encoding="utf-8") as file:
                    count = _write(lines, file)
            except OSError as exc:
                raise TetherError(
                    f"cannot write {out}: {exc.strerror or exc}",
                    fix="choose a --out path in an existing, writable folder",
                ) from None
    skipped = len(items) - count
    where = escape(str(out)) if out is not None else "standard output"
    note = f" ({skipped:,} without an answer to export skipped)" if skipped else ""
    stderr.print(f"{count:,} examples written to {where}{note}", highlight=False, soft_wrap=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="export")
