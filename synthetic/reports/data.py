"""What a report reads: the history's rows as compact series, the period, its coverage.

Rows are read in slices of time, so a report over 90 days of a busy history
never asks the store for everything at once, and kept per check and location
as `Point`s (time, severity, value): what every report needs, and nothing
more.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthetic.history import HistoryStore, Row
from synthetic.text import iso_utc
from synthetic.units import format_duration

SLICE_S = 6 * 3600.0  # rows are read six hours at a time
SLICE_LIMIT = 1_000_000  # rows of one slice; more than that: the slice is halved


@dataclass(frozen=True, slots=True)
class Point:
    """One check's result in one round."""

    at: float
    severity: str  # ok | warning | critical | unknown | skipped
    value: float | None


@dataclass
class Series:
    """One check's results at one location, oldest first."""

    check: str
    key: str  # the metric with its labels: bullmq.waiting{queue="email"}
    metric: str
    location: str
    unit: str | None
    points: list[Point] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.key} @{self.location}" if self.location else self.key

    def values(self) -> list[float]:
        return [p.value for p in self.points if p.value is not None]


@dataclass(frozen=True)
class Period:
    """The period a report covers: ``until - asked_s`` to ``until``."""

    since: float
    until: float

    @property
    def length_s(self) -> float:
        return self.until - self.since

    def to_json(self) -> dict[str, Any]:
        return {
            "since": iso_utc(self.since),
            "until": iso_utc(self.until),
            "length": format_duration(self.length_s),
        }

    def describe(self) -> str:
        return f"{format_duration(self.length_s)}, {iso_utc(self.since)} to {iso_utc(self.until)}"


@dataclass(frozen=True)
class Coverage:
    """How much of the period the history holds."""

    first: float | None  # the first row in the period
    last: float | None
    rounds: int  # runs recorded in the period

    def span_s(self) -> float:
        return 0.0 if self.first is None or self.last is None else self.last - self.first

    def share(self, period: Period) -> float:
        return (
            0.0 if self.first is None else min(1.0, (period.until - self.first) / period.length_s)
        )

    def to_json(self, period: Period) -> dict[str, Any]:
        return {
            "first": None if self.first is None else iso_utc(self.first),
            "last": None if self.last is None else iso_utc(self.last),
            "rounds": self.rounds,
            "share_of_period": round(self.share(period), 4),
        }

    def describe(self, period: Period) -> str:
        if self.first is None or self.last is None:
            return f"no history in the {format_duration(period.length_s)} asked"
        held = format_duration(period.until - self.first)
        partial = (
            f" (only {held} of the {format_duration(period.length_s)} asked)"
            if self.share(period) < 0.99
            else ""
        )
        return (
            f"history from {iso_utc(self.first)} to {iso_utc(self.last)}{partial}, "
            f"{self.rounds} rounds"
        )


def load_series(
    store: HistoryStore, period: Period, *, environment: str, location: str | None = None
) -> list[Series]:
    """Every check's rows in the period, one `Series` per check and location."""
    found: dict[tuple[str, str], Series] = {}
    for row in _rows(store, period.since, period.until, environment, location):
        series = found.get((row.check, row.location))
        if series is None:
            series = Series(row.check, row.series, row.metric, row.location, row.unit)
            found[(row.check, row.location)] = series
        value = row.value if row.value is not None and math.isfinite(row.value) else None
        series.points.append(Point(row.at, row.severity, value))
    for series in found.values():
        series.points.sort(key=lambda p: p.at)
    return sorted(found.values(), key=lambda s: (s.key, s.location, s.check))


def _rows(
    store: HistoryStore, since: float, until: float, environment: str, location: str | None
) -> Iterable[Row]:
    start = since
    while start < until:
        end = min(until, start + SLICE_S)
        yield from _slice(store, start, end, environment, location)
        start = end


def _slice(
    store: HistoryStore, since: float, until: float, environment: str, location: str | None
) -> list[Row]:
    rows = store.read(
        since=since, until=until, environment=environment, location=location, limit=SLICE_LIMIT
    )
    if len(rows) < SLICE_LIMIT or until - since < 1.0:
        return rows
    middle = since + (until - since) / 2
    return [
        *_slice(store, since, middle, environment, location),
        *_slice(store, middle, until, environment, location),
    ]


def coverage_of(
    store: HistoryStore,
    series: Sequence[Series],
    period: Period,
    *,
    environment: str,
    location: str | None = None,
) -> Coverage:
    times = [p.at for s in series for p in (s.points[:1] + s.points[-1:])]
    runs = store.runs(
        since=period.since, until=period.until, environment=environment, location=location
    )
    return Coverage(min(times, default=None), max(times, default=None), len(runs))


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least ``share`` of
    the values at or below it (``share`` in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]
