"""Report figures as inline SVG strings: the sweep's trade-off curve and dot-and-whisker interval charts.

Written by hand rather than with a plotting library so the report stays one dependency-free file, and every mark
carries its figure as a `data-*` attribute, which is how the tests check a figure against its table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 640, 380
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 20, 48
INK, MUTED, ACCENT, ARM = "#1f2933", "#9aa5b1", "#c2410c", "#2563eb"


@dataclass(frozen=True, slots=True)
class SweepMark:
    threshold: float
    alerts_per_patient_day: float
    event_recall: float
    recommended: bool


@dataclass(frozen=True, slots=True)
class ArmMark:
    """A replay arm (live or candidate) placed on the trade-off axes."""

    label: str
    alerts_per_patient_day: float
    event_recall: float


@dataclass(frozen=True, slots=True)
class Interval:
    label: str
    value: float
    lo: float
    hi: float


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if not _finite(lo, hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(value: float) -> str:
    return f"{value:.6g}"


class _Axes:
    """Linear mapping of data to the plot area of one figure."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], height: int = HEIGHT, left: int = LEFT):
        self.x, self.y, self.height, self.left = x, y, height, left

    def px(self, value: float) -> float:
        lo, hi = self.x
        return self.left + (value - lo) / (hi - lo) * (WIDTH - self.left - RIGHT) if hi > lo else self.left

    def py(self, value: float) -> float:
        lo, hi = self.y
        return self.height - BOTTOM - (value - lo) / (hi - lo) * (self.height - TOP - BOTTOM) if hi > lo else TOP

    def x_axis(self, label: str) -> list[str]:
        base = self.height - BOTTOM
        parts = [f'<line x1="{self.left}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="{INK}"/>']
        for t in _ticks(*self.x):
            parts.append(
                f'<line x1="{self.px(t):.1f}" y1="{base}" x2="{self.px(t):.1f}" y2="{base + 4}" stroke="{INK}"/>'
                f'<text x="{self.px(t):.1f}" y="{base + 16}" text-anchor="middle">{_fmt(t)}</text>'
            )
        mid = (self.left + WIDTH - RIGHT) / 2
        parts.append(f'<text x="{mid:.1f}" y="{self.height - 8}" text-anchor="middle">{escape(label)}</text>')
        return parts

    def y_axis(self, label: str) -> list[str]:
        parts = [f'<line x1="{self.left}" y1="{TOP}" x2="{self.left}" y2="{self.height - BOTTOM}" stroke="{INK}"/>']
        for t in _ticks(*self.y):
            y = self.py(t)
            parts.append(
                f'<line x1="{self.left - 4}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e4e7eb"/>'
                f'<text x="{self.left - 8}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>'
            )
        mid = (TOP + self.height - BOTTOM) / 2
        parts.append(
            f'<text x="14" y="{mid:.1f}" text-anchor="middle" transform="rotate(-90 14 {mid:.1f})">'
            f"{escape(label)}</text>"
        )
        return parts


def _svg(kind: str, title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg class="figure" data-figure="{kind}" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" font-family="sans-serif" font-size="11" fill="{INK}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def tradeoff_svg(marks: Sequence[SweepMark], budget: float | None, arms: Sequence[ArmMark] = ()) -> str:
    """Event recall against alerts per patient-day, one point per threshold joined in threshold order.

    The budget is a dashed vertical line and the recommended threshold a ring; `arms` (the replay's live and
    candidate arms) are squares on the same axes, or a labelled arrow at the right edge when far beyond the sweep.
    """
    shown = sorted((m for m in marks if _finite(m.alerts_per_patient_day, m.event_recall)), key=lambda m: m.threshold)
    placed = [a for a in arms if _finite(a.alerts_per_patient_day, a.event_recall)]
    has_budget = budget is not None and math.isfinite(budget)
    xs = [m.alerts_per_patient_day for m in shown] + ([budget] if has_budget and budget is not None else [])
    x_max = max(xs or [a.alerts_per_patient_day for a in placed] or [1.0]) * 1.15 or 1.0
    ys = [m.event_recall for m in shown] + [a.event_recall for a in placed]
    # Recall is read near its top; the axis starts at the tenth below the lowest point rather than at 0.
    y_min = max(0.0, math.floor((min(ys, default=0.0) - 0.05) * 10) / 10)
    axes = _Axes((0.0, x_max), (y_min, 1.0))
    body = axes.y_axis("event recall") + axes.x_axis("alerts per patient-day")
    if has_budget and budget is not None:
        x = axes.px(budget)
        body.append(
            f'<line class="budget" data-value="{_fmt(budget)}" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" '
            f'y2="{HEIGHT - BOTTOM}" stroke="{ACCENT}" stroke-dasharray="5 4"/>'
            f'<text x="{x + 4:.1f}" y="{HEIGHT - BOTTOM - 6}" fill="{ACCENT}">budget {_fmt(budget)}</text>'
        )
    path = " ".join(f"{axes.px(m.alerts_per_patient_day):.1f},{axes.py(m.event_recall):.1f}" for m in shown)
    if path:
        body.append(f'<polyline points="{path}" fill="none" stroke="{MUTED}"/>')
    labelled: list[tuple[float, float]] = []
    for m in shown:
        x, y = axes.px(m.alerts_per_patient_day), axes.py(m.event_recall)
        body.append(
            f'<circle class="sweep-point" data-threshold="{_fmt(m.threshold)}" '
            f'data-x="{_fmt(m.alerts_per_patient_day)}" data-y="{_fmt(m.event_recall)}" cx="{x:.1f}" cy="{y:.1f}" '
            f'r="3.5" fill="{INK}"><title>threshold {_fmt(m.threshold)}: {m.alerts_per_patient_day:.2f} alerts/'
            f"patient-day, recall {m.event_recall:.1%}</title></circle>"
        )
        # Threshold labels only where they do not overprint one another (each point has a tooltip).
        if m.recommended or all(math.hypot(x - lx, y - ly) > 30 for lx, ly in labelled):
            labelled.append((x, y))
            body.append(
                f'<text x="{x + 5:.1f}" y="{y + 13:.1f}" fill="#52606d" font-size="9">{_fmt(m.threshold)}</text>'
            )
        if m.recommended:
            body.append(
                f'<circle class="recommended" data-threshold="{_fmt(m.threshold)}" cx="{x:.1f}" cy="{y:.1f}" r="8" '
                f'fill="none" stroke="{ACCENT}" stroke-width="2"/>'
            )
    for arm in placed:
        y = axes.py(arm.event_recall)
        data = (
            f'class="arm" data-label="{escape(arm.label)}" data-x="{_fmt(arm.alerts_per_patient_day)}" '
            f'data-y="{_fmt(arm.event_recall)}" fill="{ARM}"'
        )
        tip = f"<title>{escape(arm.label)}: {arm.alerts_per_patient_day:.2f} alerts/patient-day</title>"
        if arm.alerts_per_patient_day <= x_max:
            x = axes.px(arm.alerts_per_patient_day)
            body.append(f'<rect {data} x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8">{tip}</rect>')
        else:
            x = WIDTH - RIGHT
            body.append(
                f'<polygon {data} points="{x - 8},{y - 5:.1f} {x},{y:.1f} {x - 8},{y + 5:.1f}">{tip}</polygon>'
                f'<text x="{x - 10}" y="{y - 7:.1f}" text-anchor="end" fill="{ARM}" font-size="9">'
                f"{escape(arm.label)} {arm.alerts_per_patient_day:.1f} &#8594;</text>"
            )
    return _svg("tradeoff", "Event recall against alerts per patient-day across thresholds", body)


def interval_svg(kind: str, title: str, items: Sequence[Interval], *, zero_line: bool = False) -> str:
    """One row per item: a dot at the value and a whisker over its 95% interval (missing parts left out)."""
    row, label_width = 26, 250
    height = TOP + BOTTOM + row * max(1, len(items))
    values = [v for i in items for v in (i.value, i.lo, i.hi) if math.isfinite(v)] + ([0.0] if zero_line else [])
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.1 or 1.0
    axes = _Axes((lo - pad, hi + pad), (0.0, 1.0), height=height, left=label_width)
    body = axes.x_axis(title)
    if zero_line:
        x = axes.px(0.0)
        body.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{height - BOTTOM}" stroke="{MUTED}"/>')
    for n, item in enumerate(items):
        y = TOP + row * n + row / 2
        body.append(f'<text x="{label_width - 8}" y="{y + 4:.1f}" text-anchor="end">{escape(item.label)}</text>')
        if _finite(item.lo, item.hi):
            body.append(
                f'<line x1="{axes.px(item.lo):.1f}" y1="{y:.1f}" x2="{axes.px(item.hi):.1f}" y2="{y:.1f}" '
                f'stroke="{ARM}" stroke-width="2"/>'
            )
        if math.isfinite(item.value):
            body.append(
                f'<circle class="estimate" data-label="{escape(item.label)}" data-value="{_fmt(item.value)}" '
                f'data-lo="{_fmt(item.lo)}" data-hi="{_fmt(item.hi)}" cx="{axes.px(item.value):.1f}" cy="{y:.1f}" '
                f'r="4" fill="{INK}"/>'
            )
        else:
            body.append(f'<text x="{label_width + 4}" y="{y + 4:.1f}" fill="{MUTED}">not defined</text>')
    return _svg(kind, title, body, height)
