"""Small inline SVG figures for the html reports, drawn on the server (pure).

No script and nothing from another site: the file opens offline and prints.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from synthetic.serve.sparkline import THRESHOLD_COLOURS

BINS = 20
BAR = "#57606a"


def histogram(
    values: Sequence[float],
    *,
    warning: Sequence[float] = (),
    critical: Sequence[float] = (),
    width: int = 220,
    height: int = 48,
    label: str = "",
) -> str:
    """The values' distribution in `BINS` bars, the levels as dashed lines."""
    levels = [*warning, *critical]
    low, high = min([*values, *levels]), max([*values, *levels])
    if high == low:
        low, high = low - 1, high + 1
    counts = [0] * BINS
    for value in values:
        counts[min(BINS - 1, int((value - low) / (high - low) * BINS))] += 1
    tallest = max(counts) or 1
    step = width / BINS
    parts = [
        _open(width, height, label),
        f'<rect width="{width}" height="{height}" fill="#f6f8fa"/>',
    ]
    for n, count in enumerate(counts):
        if count:
            bar = max(1.0, count / tallest * (height - 4))
            parts.append(
                f'<rect x="{n * step + 0.5:.1f}" y="{height - bar:.1f}" width="{step - 1:.1f}" '
                f'height="{bar:.1f}" fill="{BAR}"><title>{count}</title></rect>'
            )
    for name, marks in (("warning", warning), ("critical", critical)):
        for level in marks:
            x = (level - low) / (high - low) * width
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" '
                f'stroke="{THRESHOLD_COLOURS[name]}" stroke-dasharray="4 3" stroke-width="1.5">'
                f"<title>{name} {level:g}</title></line>"
            )
    parts.append("</svg>")
    return "".join(parts)


def share_bar(share: float, *, objective: float | None = None, width: int = 160, height: int = 14,
              label: str = "") -> str:  # fmt: skip
    """A horizontal bar filled to ``share`` (0..1), the objective as a tick."""
    filled = max(0.0, min(1.0, share)) * width
    colour = "#1a7f37" if objective is None or share >= objective else "#cf222e"
    parts = [
        _open(width, height, label),
        f'<rect width="{width}" height="{height}" fill="#eaeef2"/>',
        f'<rect width="{filled:.1f}" height="{height}" fill="{colour}"/>',
    ]
    if objective is not None:
        x = objective * width
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#24292f"/>')
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, label: str) -> str:
    shown = html.escape(label)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{shown}"><title>{shown}</title>'
    )
