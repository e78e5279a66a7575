"""Severity, CheckResult and RunResult: the plain data a run produces.

Everything here is JSON-able, so a result can travel from an xdist worker to
the controller on a test report and be written as ``results.json``
(schema ``synthetic.results/v1``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "synthetic.results/v1"


class Severity(enum.Enum):
    """A check's outcome.

    ``rank`` orders them worst last: a check that could not measure (UNKNOWN)
    may hide a breach, so it ranks above WARNING and below CRITICAL, the order
    Icinga and Nagios dashboards sort by. ``nagios_code`` is the plugin exit
    code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    """

    SKIPPED = "skipped"
    OK = "ok"
    WARNING = "warning"
    UNKNOWN = "unknown"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def nagios_code(self) -> int:
        return _NAGIOS[self]

    @classmethod
    def worst(cls, severities: Iterable[Severity]) -> Severity:
        """The worst of ``severities``; OK when there are none (or only skips)."""
        worst = Severity.OK
        for severity in severities:
            if severity.rank > worst.rank:
                worst = severity
        return worst


_RANK = {
    Severity.SKIPPED: -1,
    Severity.OK: 0,
    Severity.WARNING: 1,
    Severity.UNKNOWN: 2,
    Severity.CRITICAL: 3,
}
_NAGIOS = {
    Severity.SKIPPED: 0,
    Severity.OK: 0,
    Severity.WARNING: 1,
    Severity.CRITICAL: 2,
    Severity.UNKNOWN: 3,
}

FAIL_ON_CHOICES = ("warning", "critical", "unknown", "never")


def fails(severity: Severity, fail_on: str) -> bool:
    """Whether ``severity`` fails a run whose ``--fail-on`` is ``fail_on``.

    ``warning`` fails on warning, unknown and critical; ``unknown`` on unknown
    and critical; ``critical`` on critical only; ``never`` never.
    """
    if fail_on == "never":
        return False
    return severity.rank >= Severity(fail_on).rank


@dataclass(frozen=True)
class Measurement:
    """A measured value with its unit and the evidence behind it.

    Return one from a check when the value needs a unit other than the
    metric's, or when a report should show what was seen (a response body,
    rows, log lines)::

        return Measurement(len(rows), unit="rows", evidence=rows)
    """

    value: Any
    unit: str | None = None
    evidence: Any = None


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check in one run (one pytest item)."""

    id: str
    metric: str
    severity: Severity
    reason: str
    value: Any = None
    unit: str | None = None
    component: str | None = None
    warning: str | None = None
    critical: str | None = None
    runbook: str | None = None
    priority: str | None = None
    duration_ms: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    evidence: Any = None
    samples: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The metric with its labels: one series, stable across runs."""
        return metric_key(self.metric, self.labels)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["labels"] = dict(self.labels)
        data["samples"] = dict(self.samples)
        data["value"] = json_value(self.value)
        data["duration_ms"] = round(self.duration_ms, 3)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        fields = dict(data)
        fields["severity"] = Severity(fields["severity"])
        return cls(**fields)


@dataclass(frozen=True)
class RunResult:
    """One run: its environment, timing and every check's result."""

    run_id: str
    environment: str
    target: str | None
    started_at: str
    finished_at: str
    checks: tuple[CheckResult, ...]

    @property
    def worst(self) -> Severity:
        return Severity.worst(check.severity for check in self.checks)

    def worst_first(self) -> list[CheckResult]:
        """Checks ordered worst first, then by id, for summaries and tables."""
        return sorted(self.checks, key=lambda c: (-c.severity.rank, c.id))

    def counts(self) -> dict[str, int]:
        counts = {severity.value: 0 for severity in Severity}
        for check in self.checks:
            counts[check.severity.value] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "environment": self.environment,
            "target": self.target,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "worst": self.worst.value,
            "counts": self.counts(),
            "checks": [check.to_json() for check in self.worst_first()],
        }


def metric_key(metric: str, labels: Mapping[str, str]) -> str:
    """``metric`` with its labels in Prometheus style: ``bullmq.waiting{queue="email"}``."""
    if not labels:
        return metric
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
