"""The last 24 hours of every check, kept small for the status page's sparklines.

Rounds are folded into `BUCKETS` buckets over the window: each keeps the
bucket's last value and its worst severity, so a spike of one round still
colours its bucket. Filled by every round, and once from the history at
start (so a restarted runner still draws the day).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from synthetic.history.model import Row, epoch, numeric
from synthetic.results import RunResult, Severity
from synthetic.serve.sparkline import Point

BUCKETS = 240
WINDOW_S = 24 * 3600.0
_RANK = {s.value: s.rank for s in Severity}


class Series:
    def __init__(self, *, window_s: float = WINDOW_S, buckets: int = BUCKETS) -> None:
        self.width = window_s / buckets
        self.window_s = window_s
        self._lock = threading.Lock()
        self._points: dict[str, dict[int, Point]] = {}

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
        start = now - self.window_s
        with self._lock:
            buckets = self._points.get(check, {})
            old = [key for key in buckets if (key + 1) * self.width < start]
            for key in old:
                del buckets[key]
            return [buckets[key] for key in sorted(buckets)]

    def _add(self, check: str, point: Point) -> None:
        key = int(point.at // self.width)
        buckets = self._points.setdefault(check, {})
        before = buckets.get(key)
        if before is None:
            buckets[key] = point
            return
        later, earlier = (point, before) if point.at >= before.at else (before, point)
        worst = max(later.severity, earlier.severity, key=lambda s: _RANK.get(s, 2))
        value = later.value if later.value is not None else earlier.value
        buckets[key] = Point(later.at, value, worst)
