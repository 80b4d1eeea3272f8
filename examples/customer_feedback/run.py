"""The customer-feedback example, end to end on the local model: classify each comment into
a validated Feedback object and show the results with latency, tokens and conformity."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from classifier import MODEL, Feedback, classify

from tether import Client, ContractViolation, Result

COMMENTS = Path(__file__).with_name("comments.jsonl")


def main() -> None:
    console = Console()
    comments = [json.loads(line) for line in COMMENTS.read_text().splitlines() if line.strip()]
    results: list[tuple[dict[str, str], Result[Feedback] | ContractViolation]] = []
    with Client() as client:
        provider = client.provider(MODEL)
        console.print(
            f"model: [bold]{MODEL}[/] ({provider.model}, {provider.capabilities.enforcement})"
        )
        for comment in track(comments, description="classifying", console=console):
            try:
                results.append((comment, classify(client, comment["text"])))
            except ContractViolation as violation:  # shown, never passed on as data
                results.append((comment, violation))
    console.print(_table(results))
    console.print(_summary(results))


def _table(results: list[tuple[dict[str, str], Result[Feedback] | ContractViolation]]) -> Table:
    table = Table(title="customer feedback", show_lines=False)
    for column in ("id", "comment", "sentiment", "conf.", "themes", "ms", "tokens in/out"):
        table.add_column(column, overflow="fold")
    colour = {"positive": "green", "neutral": "yellow", "negative": "red"}
    for comment, outcome in results:
        if isinstance(outcome, ContractViolation):
            table.add_row(comment["id"], comment["text"], "[bold red]violation[/]", "", "",
                          "", "")  # fmt: skip
            continue
        fb = outcome.output
        table.add_row(
            comment["id"],
            comment["text"],
            f"[{colour[fb.sentiment]}]{fb.sentiment}[/]",
            f"{fb.confidence:.2f}",
            ", ".join(fb.themes),
            f"{outcome.latency_s * 1000:.0f}",
            f"{outcome.usage.input_tokens}/{outcome.usage.output_tokens}",
        )
    return table


def _summary(results: list[tuple[dict[str, str], Result[Feedback] | ContractViolation]]) -> str:
    done = [r for _, r in results if not isinstance(r, ContractViolation)]
    first_try = sum(1 for r in done if r.repairs == 0)
    latency = sorted(r.latency_s for r in done)
    p50 = latency[len(latency) // 2] * 1000 if latency else 0.0
    tokens = sum(r.usage.total_tokens for r in done)
    return (
        f"conformity: {len(done)}/{len(results)} schema-valid "
        f"({first_try} on the first attempt, {len(done) - first_try} after repair, "
        f"{len(results) - len(done)} violations); "
        f"latency p50 {p50:.0f} ms; {tokens} tokens; cost ${sum(r.cost_usd for r in done):.4f}"
    )


if __name__ == "__main__":
    main()
