"""Chart geometry for inline SVG: axes with round tick values, bars, and line series.

Only numbers and label strings are computed here; `templates/_chart.html` draws them, so every
piece of text goes through the template's autoescaping. A small module of our own rather than a
charting library: three chart shapes do not warrant a dependency, and the output stays plain SVG
that needs no script and no inline styles (the dashboard's CSP allows neither).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

Format = Callable[[float], str]

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 72, 628, 28, 196  # the plot area's edges
LABEL_EVERY = 5  # days between x-axis labels (counted back from the last day)


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    title: str


@dataclass(frozen=True)
class Series:
    name: str
    css: str  # a class from dashboard.css: s1, s2
    segments: list[str]  # polyline `points`, one per run of days with a value
    dots: list[Dot]


@dataclass(frozen=True)
class Chart:
    title: str
    y_label: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    bars: list[Bar]
    series: list[Series]
    empty: bool
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM
    x_label: str = "day (UTC)"


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) that covers `span` in about `ticks`."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power * (1 + 1e-9):
            return float(factor * power)
    return float(10 * power)


def _y_axis(top_value: float, fmt: Format) -> tuple[float, list[Tick]]:
    step = nice_step(top_value)
    count = max(1, math.ceil(top_value / step - 1e-9))
    upper = step * count
    ticks = [Tick(_y(step * i, upper), fmt(step * i)) for i in range(count + 1)]
    return upper, ticks


def _y(value: float, upper: float) -> float:
    return round(BOTTOM - (BOTTOM - TOP) * (value / upper), 2)


def _slot(days: Sequence[date]) -> float:
    return (RIGHT - LEFT) / max(1, len(days))


def _x_ticks(days: Sequence[date], every: int = LABEL_EVERY) -> list[Tick]:
    slot = _slot(days)
    last = len(days) - 1
    return [
        Tick(round(LEFT + (i + 0.5) * slot, 2), f"{d:%b} {d.day}")
        for i, d in enumerate(days)
        if (last - i) % every == 0
    ]


def _day(d: date) -> str:
    return d.isoformat()


def bar_chart(
    title: str,
    y_label: str,
    days: Sequence[date],
    values: Sequence[float],
    fmt: Format,
    label_every: int = LABEL_EVERY,  # more days than a month need sparser x labels
) -> Chart:
    upper, y_ticks = _y_axis(max(values, default=0.0), fmt)
    slot = _slot(days)
    width = round(slot * 0.7, 2)
    bars = [
        Bar(
            x=round(LEFT + i * slot + (slot - width) / 2, 2),
            y=_y(v, upper),
            width=width,
            height=round(BOTTOM - _y(v, upper), 2),
            title=f"{_day(d)}: {fmt(v)}",
        )
        for i, (d, v) in enumerate(zip(days, values, strict=True))
        if v > 0
    ]
    return Chart(title, y_label, _x_ticks(days, label_every), y_ticks, bars, [], empty=not bars)


def line_chart(
    title: str,
    y_label: str,
    days: Sequence[date],
    series: Sequence[tuple[str, Sequence[float | None]]],
    fmt: Format,
    upper: float | None = None,
) -> Chart:
    """Lines over days; a None value leaves a gap. `upper` fixes the axis (e.g. 1 for rates)."""
    highest = max((v for _, values in series for v in values if v is not None), default=0.0)
    top_value, y_ticks = _y_axis(upper if upper is not None else highest, fmt)
    slot = _slot(days)
    drawn: list[Series] = []
    for number, (name, values) in enumerate(series, start=1):
        segments: list[list[str]] = []
        dots: list[Dot] = []
        previous: float | None = None
        for i, (d, v) in enumerate(zip(days, values, strict=True)):
            if v is None:
                previous = None
                continue
            x, y = round(LEFT + (i + 0.5) * slot, 2), _y(v, top_value)
            if previous is None:
                segments.append([])
            segments[-1].append(f"{x},{y}")
            dots.append(Dot(x, y, f"{_day(d)} {name}: {fmt(v)}"))
            previous = v
        drawn.append(Series(name, f"s{number}", [" ".join(s) for s in segments], dots))
    empty = not any(s.dots for s in drawn)
    return Chart(title, y_label, _x_ticks(days), y_ticks, [], drawn, empty=empty)


# -- number formats shared by charts and pages ------------------------------------------------


def usd(value: float) -> str:
    """Money with enough decimals to show small per-request costs."""
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    digits = min(8, max(2, 1 - math.floor(math.log10(abs(value))) + 1))
    return f"${value:.{digits}f}".rstrip("0").rstrip(".")


def ms(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    if value >= 100 or value == 0:
        return f"{value:,.0f} ms"
    return f"{value:.3g} ms"


def pct(value: float) -> str:
    scaled = value * 100
    return f"{round(scaled)}%" if abs(scaled - round(scaled)) < 1e-6 else f"{scaled:.1f}%"
