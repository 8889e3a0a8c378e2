"""Small charts as inline SVG, drawn on the server: no script, no external file, nothing to download.

Each function returns an ``<svg>`` element that scales to the width of its container (``viewBox``); every bar
carries a ``<title>`` (the browser's tooltip) with its exact value, and the chart an ``aria-label``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date
from html import escape

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#64748b")
"""Series colours, in order; the last one is for "other"."""
WIDTH, HEIGHT = 720, 170
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 10, 22
LIST_WIDTH = 560
"""The width of a bar list: narrower than the day charts, so that its names read at the same size."""

Format = Callable[[float], str]


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (the axis' top)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power  # pragma: no cover - the loop always returns


def day_chart(
    days: Sequence[date],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    label: str,
    fmt: Format,
    axis_fmt: Format | None = None,
) -> str:
    """Stacked bars, one per day, one colour per series (``(name, a value per day)``), with a legend; the
    axis labels use ``axis_fmt`` (``fmt`` by default), the tooltips ``fmt``."""
    top = nice_ceiling(max((sum(values) for values in zip(*(v for _, v in series), strict=True)), default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.78, 1.0)
    parts = [_grid(top, axis_fmt or fmt)]
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - bar) / 2
        base = 0.0
        for number, (name, values) in enumerate(series):
            value = values[index]
            if value <= 0:
                continue
            height = value / top * plot_h
            y = TOP + plot_h - (base + value) / top * plot_h
            tip = f"{day.isoformat()} {name}: {fmt(value)}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{_colour(number, len(series))}"><title>{escape(tip)}</title></rect>'
            )
            base += value
    parts.extend(_day_labels(days, slot))
    legend = _legend([name for name, _ in series]) if len(series) > 1 else ""
    return _svg(label, "".join(parts)) + legend


def bar_list(items: Sequence[tuple[str, float]], *, label: str, fmt: Format) -> str:
    """Horizontal bars, one per item, longest first as given, each with its name and value."""
    if not items:
        return ""
    top = max(value for _, value in items) or 1.0
    row, name_w, value_w = 22, 190, 84
    height = row * len(items) + 4
    span = LIST_WIDTH - name_w - value_w - 8
    parts = []
    for index, (name, value) in enumerate(items):
        y = 2 + index * row
        width = max(value / top * span, 1.0 if value > 0 else 0.0)
        shown = name if len(name) <= 28 else name[:27] + "\u2026"
        parts.append(
            f'<text x="{name_w - 6}" y="{y + 15}" text-anchor="end" class="name">{escape(shown)}'
            f"<title>{escape(name)}</title></text>"
            f'<rect x="{name_w}" y="{y + 3}" width="{width:.1f}" height="{row - 6}" fill="{PALETTE[0]}">'
            f"<title>{escape(f'{name}: {fmt(value)}')}</title></rect>"
            f'<text x="{name_w + width + 6:.1f}" y="{y + 15}" class="value">{escape(fmt(value))}</text>'
        )
    return _svg(label, "".join(parts), height=height, width=LIST_WIDTH, kind=" list")


def _svg(label: str, body: str, *, height: int = HEIGHT, width: int = WIDTH, kind: str = "") -> str:
    return (
        f'<svg class="chart{kind}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _grid(top: float, fmt: Format) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    lines = []
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h - fraction * plot_h
        lines.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{escape(fmt(top * fraction))}</text>'
        )
    return "".join(lines)


def _day_labels(days: Sequence[date], slot: float) -> list[str]:
    """About six day labels under the bars, the first and last always."""
    if not days:
        return []
    step = max(1, math.ceil(len(days) / 6))
    shown = sorted({*range(0, len(days), step), len(days) - 1})
    if len(shown) > 1 and shown[-1] - shown[-2] < step / 2:
        shown.pop(-2)
    y = HEIGHT - 6
    return [
        f'<text x="{LEFT + (index + 0.5) * slot:.1f}" y="{y}" text-anchor="middle" class="axis">'
        f"{days[index].strftime('%b %d')}</text>"
        for index in shown
    ]


def _colour(number: int, count: int) -> str:
    return PALETTE[min(number, len(PALETTE) - 1)] if count > 1 else PALETTE[0]


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{_colour(number, len(names))}"></i>{escape(name)}</span>'
        for number, name in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'
