"""Grouped counts from a backend, classified with the files' own rules (pure).

Loki and Logs Insights answer counts grouped by the text of a few fields (a
status, a level, the text that names a dependency); what those texts mean is
decided here with the same functions the file analysis uses: `number` for a
status, `level_number` for a level, `LogShape.dependency_of` for a dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthetic.logs.parse import level_number, number
from synthetic.logs.settings import LogsSettings
from synthetic.logs.shapes import LogShape, detect, resolve


@dataclass
class Count:
    count: float = 0.0
    errors: float = 0.0

    def to_json(self) -> dict[str, float]:
        return {"count": whole(self.count), "errors": whole(self.errors)}


def whole(value: float) -> float:
    """A count as an int when it is one (Loki and Logs Insights count whole lines)."""
    return int(value) if float(value).is_integer() else value


def requests(groups: Iterable[tuple[str | None, float]]) -> Count:
    """Requests by status text: all, and those answered >= 500."""
    total = Count()
    for status, count in groups:
        total.count += count
        code = number(status, whole=True) if status else None
        if code is not None and code >= 500:
            total.errors += count
    return total


def lines(groups: Iterable[tuple[str | None, float]], error_level: int) -> Count:
    """Lines by level text: all, and those of level >= ``error_level``."""
    total = Count()
    for level, count in groups:
        total.count += count
        found = level_number(level) if level else None
        if found is not None and found >= error_level:
            total.errors += count
    return total


def dependency_text(texts: Sequence[str | None]) -> str | None:
    """The text that names a line's dependency: the field's, or the first message present."""
    return next((t for t in texts if t), None)


@dataclass
class Calls:
    calls: float = 0.0
    failed: float = 0.0
    texts: set[str] = field(default_factory=set)


def calls(
    shape: LogShape,
    groups: Iterable[tuple[Sequence[str | None], str | None, str | None, bool, float]],
    error_level: int,
) -> dict[str, Calls]:
    """Calls per dependency from groups of (texts, level, status, error field present,
    count): failed when the level is an error, the status >= 500 or the error field
    is there, as in the files."""
    found: dict[str, Calls] = {}
    for texts, level, status, has_error, count in groups:
        text = dependency_text(texts)
        dependency = shape.dependency_of(text)
        if dependency is None:
            continue
        entry = found.setdefault(dependency, Calls())
        entry.calls += count
        entry.texts.add(text or "")
        level_found = level_number(level) if level else None
        code = number(status, whole=True) if status else None
        if (
            has_error
            or (level_found is not None and level_found >= error_level)
            or (code is not None and code >= 500)
        ):
            entry.failed += count
    return found


def timed_calls(
    shape: LogShape, groups: Iterable[tuple[Sequence[str | None], float]]
) -> dict[str, Calls]:
    """Calls with a duration per dependency, and the texts that named them."""
    found: dict[str, Calls] = {}
    for texts, count in groups:
        text = dependency_text(texts)
        dependency = shape.dependency_of(text)
        if dependency is not None and text is not None:
            entry = found.setdefault(dependency, Calls())
            entry.calls += count
            entry.texts.add(text)
    return found


def shape_of(settings: LogsSettings, sample: Callable[[], list[dict[str, Any]]]) -> LogShape:
    """The configured preset, else the one the latest lines show (else the guide's)."""
    if settings.preset is not None:
        return resolve(settings, settings.preset, detected=None)
    found = detect(sample())
    if found is None:
        return resolve(settings, "guide", detected=None)
    return resolve(settings, found[0], detected=f"{found[1]} (the latest lines)")
