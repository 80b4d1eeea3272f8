"""Shared plumbing for the benchmarks: paths, machine facts, package versions, the local model,
a Rich progress bar, and writing `benchmarks/results/<name>.json` plus a Markdown table.

Nothing here measures anything; each benchmark script owns its method and says so in its JSON.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import random
import statistics
import sys
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tether.cpu import VNNI_FLAGS, cpu_flags, cpuinfo_field

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llguidance import LLTokenizer

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_DATA = REPO_ROOT / "tests" / "data"  # the vendored samples (tests/data/README.md)
DEFAULT_RESULTS = BENCH_DIR / "results"
EXAMPLE_DIR = REPO_ROOT / "examples" / "customer_feedback"

console = Console(stderr=True)


# -- command line -----------------------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="root of the data sets: the vendored samples by default; pass the full sets "
        "(e.g. ../shared/data from the repo root) for complete runs",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_RESULTS, help="folder for <name>.json and <name>.md"
    )
    return parser


def check_data(data: Path, *relative: str) -> Path:
    path = data.joinpath(*relative)
    if not path.exists():
        raise SystemExit(f"missing data: {path} (pass --data to point at the data sets' root)")
    return path


# -- facts about the run ----------------------------------------------------------------------


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cpu_model() -> str:
    return cpuinfo_field("model name") or platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    wanted = {"avx", "avx2", "fma", "f16c", "avx512f", "amx_tile", *VNNI_FLAGS}
    return sorted(cpu_flags() & wanted)


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine() -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "load_average_at_start": load_average(),
    }


def versions(*packages: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


# -- statistics -------------------------------------------------------------------------------


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, mean, median, p10/p90, min/max of a sample (None when empty)."""
    if not values:
        return {"count": 0, "mean": None, "median": None, "p10": None, "p90": None}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "mean": statistics.fmean(ordered),
        "median": statistics.median(ordered),
        "p10": percentile(ordered, 10),
        "p90": percentile(ordered, 90),
        "min": ordered[0],
        "max": ordered[-1],
    }


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks; `ordered` must be sorted."""
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rounded(value: Any, digits: int = 6) -> Any:
    """Round floats recursively so the JSON stays readable."""
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


# -- output -----------------------------------------------------------------------------------


def progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    name: str,
    out_dir: Path,
    payload: dict[str, Any],
    *,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    notes: Sequence[str] = (),
) -> tuple[Path, Path]:
    """Write `<name>.json` (payload, with the machine's load average at the end added) and
    `<name>.md` (title, headline, table, notes)."""
    for key in ("value", "target", "meets_target"):
        if key not in payload:
            raise ValueError(f"results need a top-level {key!r}")
    payload.setdefault("machine", machine())["load_average_at_end"] = load_average()
    payload["finished_utc"] = utc_now()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{name}.json"
    md_path = out_dir / f"{name}.md"
    json_path.write_text(json.dumps(rounded(payload), indent=2, ensure_ascii=False) + "\n")
    verdict = "meets" if payload["meets_target"] else "misses"
    text = [
        f"# {title}",
        "",
        f"Headline: **{payload['headline']}** = {fmt(payload['value'])} "
        f"(target {payload['target_rule']}: {verdict} it). "
        f"Run {payload['date_utc']} on {payload['machine']['cpu_model']}, "
        f"{payload['machine']['cores']} cores, Python {payload['machine']['python']}.",
        "",
        markdown_table(header, rows),
    ]
    if notes:
        text += ["", *[f"- {note}" for note in notes]]
    md_path.write_text("\n".join(text) + "\n")
    return json_path, md_path


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != 0 and abs(value) < 10 ** -(digits - 1):
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}"
    return str(value)


# -- the local model --------------------------------------------------------------------------


def default_model_path() -> Path:
    """tether's default local model (Gemma 3 270M Q4_K_M), assembled and sha256-checked."""
    from tether.providers.gguf_file import default_model_file, verify

    return verify(default_model_file(Path.home() / ".cache" / "tether"), model="gemma-3-270m")


def load_llama(path: Path, *, n_ctx: int, threads: int) -> Llama:
    from llama_cpp import Llama

    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)


def llg_tokenizer(llm: Llama) -> LLTokenizer:
    """The llguidance tokenizer built exactly as tether's LlamaCppProvider builds it."""
    import llama_cpp
    from llguidance.llamacpp import lltokenizer_from_vocab

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return lltokenizer_from_vocab(llama_cpp.llama_model_get_vocab(llm.model))


def is_eog(llm: Llama, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_token_is_eog(llm._model.vocab, token))


def add_example_path() -> None:
    if str(EXAMPLE_DIR) not in sys.path:
        sys.path.insert(0, str(EXAMPLE_DIR))


# -- data -------------------------------------------------------------------------------------


def load_yelp(data: Path) -> list[tuple[str, int]]:
    """(review, label) pairs of sentiment/yelp_labelled.tsv; label 1 = positive.

    Lines end at a newline (LF) only: `str.splitlines()` would also break a review at U+0085
    (NEL), U+2028 and the other characters Unicode counts as line breaks."""
    path = check_data(data, "sentiment", "yelp_labelled.tsv")
    rows: list[tuple[str, int]] = []
    for line in path.read_text(encoding="utf-8").split("\n")[1:]:  # first line is a header
        if not line.strip():
            continue
        text, _, label = line.rpartition("\t")
        rows.append((text.strip(), int(label)))
    return rows


def pick_reviews(count: int, size: int, seed: int) -> tuple[int, list[int]]:
    """A seeded sample of `size` review indexes out of `count`, plus one more for warming up.

    A sample larger than the data allows (the vendored Yelp sample has 200 reviews) is cut to
    `count - 1`, with a note."""
    if size + 1 > count:
        console.print(f"[yellow]only {count} reviews in the data: sampling {count - 1}")
        size = count - 1
    picked = random.Random(seed).sample(range(count), size + 1)
    return picked[0], picked[1:]
