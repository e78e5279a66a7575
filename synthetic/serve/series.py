"""The last 24 hours of every check, kept small for the status page's sparklines.

Each check keeps its last `RECENT` rounds as they were, and everything older
folded into `BUCKETS` buckets over the window: a bucket keeps its last value
and its worst severity, so a spike of one round still colours it. A fresh
runner draws every round; a day-old one draws the day in 6-minute buckets
and its last two hours (at 30 s a round) in full. Filled by every round, and
once from the history at start (so a restarted runner still draws the day).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable

from synthetic.history.model import Row, epoch, numeric
from synthetic.results import RunResult, Severity
from synthetic.serve.sparkline import Point

BUCKETS = 240
RECENT = 240
WINDOW_S = 24 * 3600.0
_RANK = {s.value: s.rank for s in Severity}


class Series:
    def __init__(
        self, *, window_s: float = WINDOW_S, buckets: int = BUCKETS, recent: int = RECENT
    ) -> None:
        self.width = window_s / buckets
        self.window_s = window_s
        self.recent = recent
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[int, Point]] = {}
        self._recent: dict[str, collections.deque[Point]] = {}

    def add_run(self, run: RunResult) -> None:
        at = epoch(run.finished_at)
        with self._lock:
            for check in run.checks:
                self._add(check.id, Point(at, numeric(check.value), check.severity.value))

    def add_rows(self, rows: Iterable[Row]) -> None:
        with self._lock:
            for row in rows:
                self._add(row.check, Point(row.at, row.value, row.severity))

    def points(self, check: str, *, now: float) -> list[Point]:
        """The check's points in the window, oldest first: buckets, then recent rounds."""
        start = now - self.window_s
        with self._lock:
            buckets = self._buckets.get(check, {})
            for key in [key for key in buckets if (key + 1) * self.width < start]:
                del buckets[key]
            recent = sorted(p for p in self._recent.get(check, ()) if p.at >= start)
            first = recent[0].at if recent else float("inf")
            older = [p for key, p in sorted(buckets.items()) if (key + 1) * self.width <= first]
            return [p for p in older if p.at >= start] + recent

    def _add(self, check: str, point: Point) -> None:
        self._recent.setdefault(check, collections.deque(maxlen=self.recent)).append(point)
        key = int(point.at // self.width)
        buckets = self._buckets.setdefault(check, {})
        before = buckets.get(key)
        if before is None:
            buckets[key] = point
            return
        later, earlier = (point, before) if point.at >= before.at else (before, point)
        worst = max(later.severity, earlier.severity, key=lambda s: _RANK.get(s, 2))
        value = later.value if later.value is not None else earlier.value
        buckets[key] = Point(later.at, value, worst)
