"""A check's recent values as an inline SVG, made on the server (pure).

Numeric values are a line over the period, with the warning and critical
thresholds drawn where they are numbers; every round is also a tick
coloured by its severity along the bottom, so a check whose value is a word
(``'ok'``, ``'degraded'``) still shows when it was bad. No script, no
external file: it renders under the page's Content-Security-Policy as is.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from synthetic.errors import SyntheticError
from synthetic.thresholds import Comparison, Range, parse_threshold

COLOURS = {
    "ok": "#1a7f37",
    "warning": "#b58100",
    "critical": "#cf222e",
    "unknown": "#6e40c9",
    "skipped": "#8c959f",
}
THRESHOLD_COLOURS = {"warning": "#b58100", "critical": "#cf222e"}


@dataclass(frozen=True, order=True)
class Point:
    at: float  # epoch seconds
    value: float | None
    severity: str


def threshold_levels(expression: str | None, unit: str | None) -> list[float]:
    """The numbers a threshold expression draws as lines (none for words or predicates)."""
    if not expression:
        return []
    try:
        parsed = parse_threshold(expression, unit=unit)
    except (SyntheticError, ValueError, TypeError):
        return []
    if isinstance(parsed, Comparison) and not isinstance(parsed.operand, str):
        return [float(parsed.operand)]
    if isinstance(parsed, Range):
        return [float(n) for n in (parsed.start, parsed.end) if n is not None]
    return []


def sparkline(
    points: Sequence[Point],
    *,
    start: float,
    end: float,
    warning: Sequence[float] = (),
    critical: Sequence[float] = (),
    width: int = 240,
    height: int = 48,
    label: str = "",
) -> str:
    """An SVG of ``points`` between ``start`` and ``end`` (epoch seconds)."""
    band = 6  # the severity ticks along the bottom
    top, bottom = 3.0, float(height - band - 3)
    span = max(end - start, 1e-9)

    def x(at: float) -> float:
        return round((min(max(at, start), end) - start) / span * (width - 2) + 1, 1)

    numbers = [p.value for p in points if p.value is not None]
    levels = [*warning, *critical]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html.escape(label)}">',
        f"<title>{html.escape(label)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f6f8fa"/>',
    ]
    if numbers:
        low, high = min([*numbers, *levels]), max([*numbers, *levels])
        if high == low:
            low, high = low - 1, high + 1
        pad = (high - low) * 0.08
        low, high = low - pad, high + pad

        def y(value: float) -> float:
            return round(bottom - (value - low) / (high - low) * (bottom - top), 1)

        for name, values in (("warning", warning), ("critical", critical)):
            for level in values:
                parts.append(
                    f'<line x1="0" x2="{width}" y1="{y(level)}" y2="{y(level)}" '
                    f'stroke="{THRESHOLD_COLOURS[name]}" stroke-width="1" '
                    f'stroke-dasharray="4 3"><title>{name} {level:g}</title></line>'
                )
        segments: list[list[str]] = [[]]
        for point in points:
            if point.value is None:
                segments.append([])  # a gap where nothing was measured
            else:
                segments[-1].append(f"{x(point.at)},{y(point.value)}")
        for segment in segments:
            if len(segment) == 1:
                cx, cy = segment[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="1.8" fill="#24292f"/>')
            elif segment:
                parts.append(
                    f'<polyline points="{" ".join(segment)}" fill="none" '
                    'stroke="#24292f" stroke-width="1.4" stroke-linejoin="round"/>'
                )
    # Each round's severity from its time to the next round's (the last: a tick).
    for i, point in enumerate(points):
        colour = COLOURS.get(point.severity, COLOURS["unknown"])
        left = x(point.at)
        right = x(points[i + 1].at) if i + 1 < len(points) else left + 2.0
        parts.append(
            f'<rect x="{left:.1f}" y="{height - band}" width="{max(right - left, 1.5):.1f}" '
            f'height="{band}" fill="{colour}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
