"""Per-minute aggregates: what a run folds new lines into and the metrics read.

A minute holds, per series (``requests``, ``lines``, ``dep:<name>``,
``path:<METHOD> <path>``), the count, the errors and the slow ones; and, for
the minutes of the recent window only, the DDSketch bins of the durations.
Minutes are merged by adding, so reading a file in one go or in pieces gives
the same aggregates; minutes older than the longest window are dropped.

Percentiles come from DataDog's ``ddsketch``: the bins are the keys of its
`LogarithmicMapping` (relative accuracy `RELATIVE_ACCURACY`), stored sparse
as ``{key: count}``; a window's bins are summed and loaded into a `DDSketch`
to ask its quantile. Any quantile it returns is within 1 % of the true value
at that rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
ZERO_KEY = "z"  # durations of 0 ms: DDSketch's zero bucket
MAX_PATHS_PER_MINUTE = 50
OTHER_PATH = "path:other"

_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
# The same key as `_MAPPING.key(v)`, written so polars can compute it for a column.
KEY_MULTIPLIER = math.log(2) / math.log1p(2 * RELATIVE_ACCURACY / (1 - RELATIVE_ACCURACY))


@dataclass(frozen=True)
class Tally:
    count: int = 0
    errors: int = 0
    slow: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.count + other.count, self.errors + other.errors, self.slow + other.slow)


@dataclass
class Minute:
    counts: dict[str, list[int]] = field(default_factory=dict)  # series -> [count, errors, slow]
    bins: dict[str, dict[str, int]] = field(default_factory=dict)  # series -> {key: count}

    def add_counts(self, series: str, count: int, errors: int, slow: int) -> None:
        if series.startswith("path:") and series not in self.counts:
            paths = sum(1 for s in self.counts if s.startswith("path:"))
            if paths >= MAX_PATHS_PER_MINUTE:
                series = OTHER_PATH
        tally = self.counts.setdefault(series, [0, 0, 0])
        tally[0] += count
        tally[1] += errors
        tally[2] += slow

    def add_bin(self, series: str, key: str, count: int) -> None:
        if series.startswith("path:") and series not in self.counts:
            series = OTHER_PATH
        bins = self.bins.setdefault(series, {})
        bins[key] = bins.get(key, 0) + count


class Aggregates:
    """Minute buckets, keyed by epoch minute."""

    def __init__(self, minutes: dict[int, Minute] | None = None) -> None:
        self.minutes: dict[int, Minute] = minutes or {}

    def minute(self, minute: int) -> Minute:
        bucket = self.minutes.get(minute)
        if bucket is None:
            bucket = self.minutes[minute] = Minute()
        return bucket

    def prune(self, now_minute: int, *, keep: int, keep_bins: int) -> None:
        """Drop minutes that left the longest window, and bins older than the recent one."""
        for minute in list(self.minutes):
            if minute <= now_minute - keep:
                del self.minutes[minute]
            elif minute <= now_minute - keep_bins:
                self.minutes[minute].bins.clear()

    def _window(self, now_minute: int, minutes: int) -> Iterable[Minute]:
        return (b for m, b in self.minutes.items() if now_minute - minutes < m <= now_minute)

    def tally(self, series: str, now_minute: int, minutes: int) -> Tally:
        """Count, errors and slow ones of ``series`` in the last ``minutes``, this one too."""
        total = Tally()
        for bucket in self._window(now_minute, minutes):
            counts = bucket.counts.get(series)
            if counts:
                total = total + Tally(*counts)
        return total

    def series(self, prefix: str, now_minute: int, minutes: int) -> list[str]:
        found = {s for b in self._window(now_minute, minutes) for s in b.counts}
        return sorted(s for s in found if s.startswith(prefix))

    def quantile(self, series: str, now_minute: int, minutes: int, q: float) -> float | None:
        """The ``q`` quantile of the durations of ``series`` in the window; None if none."""
        merged: dict[str, int] = {}
        for bucket in self._window(now_minute, minutes):
            for key, count in bucket.bins.get(series, {}).items():
                merged[key] = merged.get(key, 0) + count
        if not merged:
            return None
        sketch = DDSketch(RELATIVE_ACCURACY)
        for key, count in merged.items():
            value = 0.0 if key == ZERO_KEY else _MAPPING.value(int(key))
            sketch.add(value, count)
        found = sketch.get_quantile_value(q)
        return None if found is None else float(found)

    def to_json(self) -> dict[str, Any]:
        return {
            str(m): {"counts": b.counts, "bins": b.bins} for m, b in sorted(self.minutes.items())
        }

    @classmethod
    def from_json(cls, data: Any) -> Aggregates:
        """Aggregates from the state; what is malformed is dropped, not fatal."""
        minutes: dict[int, Minute] = {}
        if isinstance(data, Mapping):
            for key, value in data.items():
                try:
                    minute = int(key)
                    counts = {
                        str(s): [int(n) for n in c][:3] for s, c in value.get("counts", {}).items()
                    }
                    bins = {
                        str(s): {str(k): int(n) for k, n in b.items()}
                        for s, b in value.get("bins", {}).items()
                    }
                except (AttributeError, TypeError, ValueError):
                    continue
                if all(len(c) == 3 for c in counts.values()):
                    minutes[minute] = Minute(counts, bins)
        return cls(minutes)
