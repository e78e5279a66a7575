"""What the history holds: one `Row` per check per run, one `RunRow` per run (pure data).

Values are kept as the run wrote them, already masked: a number in
``value``, anything else (``'ok'``, ``'healthy'``) in ``text``. Times are
epoch seconds (UTC). ``location`` names where the run ran from (empty when
the config names none), so runners in several places can share one store.
"""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from typing import Any

from synthetic.results import RunResult
from synthetic.text import iso_utc


@dataclass(frozen=True)
class Row:
    """One check's result in one run."""

    at: float  # when its run finished, epoch seconds
    environment: str
    location: str
    run_id: str
    check: str  # the check id (pytest node id)
    metric: str
    series: str  # the metric with its labels, e.g. bullmq.waiting{queue="email"}
    value: float | None  # a numeric value
    text: str | None  # a value that is not a number, as JSON text ('"ok"', '[1, 2]')
    unit: str | None
    severity: str
    duration_ms: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "time": iso_utc(self.at, timespec="milliseconds"),
            "environment": self.environment,
            "location": self.location,
            "run_id": self.run_id,
            "check": self.check,
            "metric": self.metric,
            "series": self.series,
            "value": self.value if self.value is not None else _loads(self.text),
            "unit": self.unit,
            "severity": self.severity,
            "duration_ms": self.duration_ms,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RunRow:
    """One run: when, where, and how it went."""

    run_id: str
    environment: str
    location: str
    started_at: float
    finished_at: float
    worst: str
    complete: bool
    checks: int

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "environment": self.environment,
            "location": self.location,
            "started_at": iso_utc(self.started_at, timespec="milliseconds"),
            "finished_at": iso_utc(self.finished_at, timespec="milliseconds"),
            "worst": self.worst,
            "complete": self.complete,
            "checks": self.checks,
        }


def rows_of(run: RunResult, *, location: str | None = None) -> tuple[RunRow, list[Row]]:
    """``run`` as history rows (its checks all stamped with the run's finish), from
    ``location`` (default: the run's own, empty when it has none)."""
    at = epoch(run.finished_at)
    location = location if location is not None else run.location or ""
    rows = []
    for check in run.checks:
        number = numeric(check.value)
        rows.append(
            Row(
                at=at,
                environment=run.environment,
                location=location,
                run_id=run.run_id,
                check=check.id,
                metric=check.metric,
                series=check.key,
                value=number,
                text=None if number is not None or check.value is None else _dumps(check.value),
                unit=check.unit,
                severity=check.severity.value,
                duration_ms=round(check.duration_ms, 3),
                reason=check.reason,
            )
        )
    summary = RunRow(
        run_id=run.run_id,
        environment=run.environment,
        location=location,
        started_at=epoch(run.started_at),
        finished_at=at,
        worst=run.worst.value,
        complete=run.complete,
        checks=len(run.checks),
    )
    return summary, rows


def numeric(value: Any) -> float | None:
    """A finite number as a float; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def epoch(text: str) -> float:
    """An ISO 8601 time (``2026-11-24T10:15:00.000Z``) as epoch seconds."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:4096]


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
