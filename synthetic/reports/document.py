"""A report as the renderers see it: headed sections of lines, tables and figures.

Pure data. Each report module fills one `Report`: the text of its sections
for text, markdown and html, and ``data`` (its own JSON document, schema
``synthetic.report.<kind>/v1``) for json. A figure is an SVG drawn by the
report (`synthetic.reports.svg`), shown by html only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    # Per row, an SVG for html (a histogram, a bar), or None.
    figures: Sequence[str | None] = ()


@dataclass(frozen=True)
class Section:
    title: str
    lines: Sequence[str] = ()  # paragraphs, each one line; "- " starts a bullet
    table: Table | None = None
    empty: str = ""  # said instead of an empty table


@dataclass(frozen=True)
class Report:
    kind: str
    title: str
    environment: str
    period: str  # one line: the period asked
    coverage: str  # one line: what the history holds of it
    not_recorded: Sequence[str] = ()  # what the stores do not hold, said plainly
    sections: Sequence[Section] = ()
    data: dict[str, Any] = field(default_factory=dict)  # the json form
    exit_code: int = 0  # runbooks: 1 when a link is broken
