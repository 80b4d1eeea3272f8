"""What `tether cache stats` reads and shows: the backend's entries, the request log's cache
numbers, and the calibration each semantically cached prompt is served under."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from tether.cache.backends.base import BackendStats
from tether.cache.keys import Policy
from tether.cache.semantic.calibration import Calibration
from tether.cache.thresholds import BUNDLED_SOURCE, RECENT_GRADES
from tether.cli.cost_chart import duration, money
from tether.errors import TetherError
from tether.runtime import Runtime
from tether.store.cache_grades import DatabaseGradeStore
from tether.store.cache_stats import CacheCounts, CacheSummary, cache_summary

NO_PROMPT = "(no prompt)"
UNCALIBRATED = "uncalibrated"


@dataclass(frozen=True)
class PromptCalibration:
    prompt: str | None  # None: calls without a registered prompt
    calibration: Calibration
    grades: int  # the prompt's own graded samples (counted up to RECENT_GRADES)

    @property
    def origin(self) -> str:
        """Where the threshold came from, in words."""
        source = self.calibration.source
        if source == BUNDLED_SOURCE:
            return "bundled"
        if source == UNCALIBRATED:
            return "none (the embedder has no bundled grades)"
        return "own grades"


@dataclass(frozen=True)
class CacheReport:
    backend: str
    entries: BackendStats
    summary: CacheSummary
    calibrations: list[PromptCalibration]
    semantic: bool  # semantic caching is on for some prompt (or every call)


def gather(runtime: Runtime, prompt: str | None, since: datetime) -> CacheReport:
    cache = runtime.cache
    entries = runtime.call_sync(cache.stats)
    if prompt is not None:
        count = entries.by_prompt.get(prompt, 0)
        entries = BackendStats(
            entries=count, by_prompt={prompt: count} if count else {}, bytes=entries.bytes
        )
    summary = cache_summary(runtime.engine, since, prompt)
    seen = [name or None for name in entries.by_prompt] + [p.prompt for p in summary.prompts]
    targets = semantic_prompts(runtime, prompt, seen)
    semantic = bool(targets) or bool(semantic_prompts(runtime, None, seen))
    calibrations = calibrations_of(runtime, [(name, [delta]) for name, delta in targets])
    return CacheReport(cache.backend.name, entries, summary, calibrations, semantic)


def semantic_prompts(
    runtime: Runtime, only: str | None, seen: Iterable[str | None]
) -> list[tuple[str | None, float]]:
    """The prompts served semantically, each with its δ: registered prompts whose production
    (else latest) version says so, and, when [cache] mode is semantic, every other prompt the
    cache or the log has seen and calls without a prompt."""
    settings = runtime.settings.cache
    registry = runtime.registry
    policies: dict[str | None, Policy] = {}
    for summary in registry.summaries():
        if only is not None and summary.name != only:
            continue
        version = summary.labels.get("production", summary.latest)
        try:
            spec = registry.get(summary.name, version=version).spec
        except TetherError:
            continue  # a spec this install cannot load is not what stats is about
        policies[summary.name] = Policy.of(settings, spec.cache)
    found = {name: p.delta for name, p in policies.items() if p.mode == "semantic"}
    if settings.mode == "semantic":
        names = [only] if only is not None else [None, *seen]
        for name in names:
            if name not in policies:
                found.setdefault(name, settings.semantic.delta)
    return sorted(found.items(), key=lambda item: (item[0] is not None, item[0] or ""))


def configured_delta(runtime: Runtime, prompt: str | None) -> float:
    for name, delta in semantic_prompts(runtime, prompt, []):
        if name == prompt:
            return delta
    return runtime.settings.cache.semantic.delta


def calibrations_of(
    runtime: Runtime, targets: Sequence[tuple[str | None, Sequence[float]]]
) -> list[PromptCalibration]:
    """The calibration the live cache would use for each prompt and δ, read afresh (the same
    `Thresholds` the cache consults, told to forget what it had)."""
    if not targets:
        return []
    cache = runtime.cache
    embedder = cache.embedder.name
    store = DatabaseGradeStore(runtime.engine)
    cache.thresholds.forget()
    found: list[PromptCalibration] = []
    for prompt, deltas in targets:
        grades = len(store.recent(prompt, RECENT_GRADES))
        for delta in deltas:
            calibration = runtime.call_sync(cache.thresholds.get, prompt, delta, embedder)
            found.append(PromptCalibration(prompt, calibration, grades))
    return found


# -- showing it ---------------------------------------------------------------------------------


def table(title: str, columns: Sequence[str], *, numbers_from: int = 1) -> Table:
    found = Table(title=title)
    for index, column in enumerate(columns):
        found.add_column(column, justify="right" if index >= numbers_from else "left")
    return found


def label(prompt: str | None) -> str:
    return escape(prompt) if prompt else NO_PROMPT


def size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GB"


def entries_table(report: CacheReport) -> Table:
    entries = report.entries
    found = table("cache entries", ("prompt", "entries"))
    whole = " (every prompt)" if report.summary.prompt is not None else ""
    found.caption = f"{report.backend} backend, answers{whole}: {size(entries.bytes)}"
    ranked = sorted(entries.by_prompt.items(), key=lambda item: (-item[1], item[0]))
    for number, (name, count) in enumerate(ranked):
        found.add_row(label(name or None), f"{count:,}", end_section=number == len(ranked) - 1)
    found.add_row("total", f"{entries.entries:,}", style="bold")
    return found


def _vetoes(counts: CacheCounts) -> str:
    return ", ".join(f"{guard} {n:,}" for guard, n in counts.vetoes.items()) or "-"


def use_table(report: CacheReport) -> Table:
    summary = report.summary
    since = f"{summary.since:%Y-%m-%d %H:%M} UTC" if summary.since else "the start"
    columns = (
        "prompt",
        "consulted",
        "lookups",
        "exact hits",
        "semantic hits",
        "hit rate",
        "saved",
        "time saved",
        "vetoes",
    )
    found = table(f"cache use since {since} (request log)", columns)
    rows = [*summary.prompts, summary.total]
    for number, counts in enumerate(rows):
        total = counts is summary.total
        rate = counts.hit_rate
        found.add_row(
            "total" if total else label(counts.prompt),
            f"{counts.consulted:,}",
            f"{counts.lookups:,}",
            f"{counts.exact_hits:,}",
            f"{counts.semantic_hits:,}",
            f"{rate:.1%}" if rate is not None else "-",
            money(counts.saved_usd),
            duration(counts.saved_s),
            escape(_vetoes(counts)),
            end_section=number == len(rows) - 2,
            style="bold" if total else None,
        )
    return found


def threshold(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "none meets δ"


def calibration_table(
    rows: Sequence[PromptCalibration],
    title: str,
    bundled: dict[float, Calibration] | None = None,
    *,
    one: bool = False,
) -> Table:
    """One row per prompt and δ; `one`: a single prompt, named in the title only."""
    columns = ["δ", "threshold", "from", "own grades", "hits", "bound"]
    if bundled is not None:
        columns.append("bundled threshold")
    if not one:
        columns.insert(0, "prompt")
    found = table(title, columns, numbers_from=0 if one else 1)
    for row in rows:
        c = row.calibration
        cells = [] if one else [label(row.prompt)]
        cells += [
            f"{c.delta:g}",
            threshold(c.threshold),
            row.origin,
            f"{row.grades:,}",
            f"{c.hits:,} of {c.samples:,}",
            f"{c.bound:.4f}",
        ]
        if bundled is not None:
            fallback = bundled.get(c.delta)
            cells.append(threshold(fallback.threshold) if fallback is not None else "-")
        found.add_row(*cells)
    return found


# -- JSON ---------------------------------------------------------------------------------------


def calibration_json(row: PromptCalibration) -> dict[str, Any]:
    return {
        **asdict(row.calibration),
        "prompt": row.prompt,
        "origin": row.origin,
        "own_grades": row.grades,
    }


def report_json(report: CacheReport) -> dict[str, Any]:
    return {
        "backend": {"name": report.backend, **asdict(report.entries)},
        "summary": report.summary.to_json(),
        "calibration": [calibration_json(row) for row in report.calibrations],
    }
