"""Severity, CheckResult and RunResult: the plain data a run produces.

Everything here is JSON-able, so a result can travel from an xdist worker to
the controller on a test report and be written as ``results.json``
(schema ``synthetic.results/v1``).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from synthetic.files import write_json_atomic

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

    ``note`` is a short text the reason ends with, whatever the severity
    (what the measured system said about the value, e.g. a health
    indicator's message); it is cut with the reason and masked like it.
    """

    value: Any
    unit: str | None = None
    evidence: Any = None
    note: str | None = None


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
    sustain_s: float = 0.0  # how long a breach must last before it alerts
    reaches: tuple[str, ...] = ()  # systems the check talks to (bff, redis, postgres)
    depends_on: tuple[str, ...] = ()  # systems whose outage inhibits its alert
    unreachable: str | None = None  # the system that did not answer, when unreachable

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
        data["reaches"] = list(self.reaches)
        data["depends_on"] = list(self.depends_on)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        fields = dict(data)
        fields["severity"] = Severity(fields["severity"])
        for name in ("reaches", "depends_on"):
            fields[name] = tuple(fields.get(name, ()))
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
    errors: tuple[str, ...] = ()
    interrupted: bool = False
    location: str | None = None  # where the runner ran from (--location), when named

    @property
    def complete(self) -> bool:
        """Every collected check ran to a result: nothing interrupted or crashed."""
        return not self.interrupted and not self.errors

    @property
    def worst(self) -> Severity:
        """The worst check; at least UNKNOWN when the run is incomplete or measured nothing.

        A run that was interrupted, lost a check (a crashed worker, a failing
        ordinary test), had no check or skipped every one cannot vouch that
        all is well.
        """
        worst = Severity.worst(check.severity for check in self.checks)
        measured = any(check.severity is not Severity.SKIPPED for check in self.checks)
        if not self.complete or not measured:
            return Severity.worst((worst, Severity.UNKNOWN))
        return worst

    def fails(self, fail_on: str) -> bool:
        """Whether this run fails under ``--fail-on``: a check at ``fail_on`` or
        worse, or (unless ``never``) a run that cannot vouch (incomplete). The
        one answer for the gate, ``--settle`` and pytest's exit status."""
        return fails(self.worst, fail_on) or (fail_on != "never" and not self.complete)

    def failing(self, fail_on: str) -> list[CheckResult]:
        """The checks at ``fail_on`` or worse, worst first."""
        return [check for check in self.worst_first() if fails(check.severity, fail_on)]

    def worst_first(self) -> list[CheckResult]:
        """Checks ordered worst first, then by id, for summaries and tables."""
        return sorted(self.checks, key=lambda c: (-c.severity.rank, c.id))

    def counts(self) -> dict[str, int]:
        counts = {severity.value: 0 for severity in Severity}
        for check in self.checks:
            counts[check.severity.value] += 1
        return counts

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        """A run from its `to_json` form (``interrupted``, when given, is kept)."""
        return cls(
            run_id=data["run_id"],
            environment=data["environment"],
            target=data["target"],
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            checks=tuple(CheckResult.from_json(check) for check in data["checks"]),
            errors=tuple(data["errors"]),
            interrupted=bool(data.get("interrupted", False)),
            location=data.get("location"),
        )

    def results_document(self) -> dict[str, Any]:
        """The ``results.json`` document (also ``/api/results``): `to_json` without
        the checks' samples, which live in the state store."""
        document = self.to_json()
        for check in document["checks"]:
            check.pop("samples", None)
        return document

    def write(self, path: Path) -> None:
        """Write ``results.json`` atomically (`synthetic.files`); `OSError` on failure."""
        write_json_atomic(path, self.results_document(), indent=2)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "environment": self.environment,
            "target": self.target,
            "location": self.location,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "worst": self.worst.value,
            "complete": self.complete,
            "errors": list(self.errors),
            "counts": self.counts(),
            "checks": [check.to_json() for check in self.worst_first()],
        }


def metric_key(metric: str, labels: Mapping[str, str]) -> str:
    """``metric`` with its labels in Prometheus style: ``bullmq.waiting{queue="email"}``."""
    if not labels:
        return metric
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


MAX_EVIDENCE_CHARS = 65_536


def masked_json(
    value: Any, mask: Callable[[Any], Any], *, max_chars: int = MAX_EVIDENCE_CHARS
) -> Any:
    """`json_safe`, masked before it is cut (``mask`` takes JSON data): a secret
    across the cut is masked whole, not half shown."""
    data = _plain(value, depth=0)
    text = json.dumps(data, ensure_ascii=False)
    if len(text) <= max_chars:
        return mask(data)
    head = mask(text[: max_chars + _MASK_SLACK])[:max_chars]
    return {"truncated": True, "chars": len(text), "head": head}


_MASK_SLACK = 1024


def json_safe(value: Any, *, max_chars: int = MAX_EVIDENCE_CHARS) -> Any:
    """``value`` as plain JSON data, at most about ``max_chars`` when serialized.

    Evidence is whatever a check saw: rows with ``Decimal`` and ``datetime``,
    a response's ``bytes``, tuples, sets. They become JSON types (text for
    what JSON has no type for), so a result always crosses to the controller
    and into ``results.json``; evidence too large is cut, and says so.
    """
    data = _plain(value, depth=0)
    text = json.dumps(data, ensure_ascii=False)
    if len(text) <= max_chars:
        return data
    return {"truncated": True, "chars": len(text), "head": text[:max_chars]}


def _plain(value: Any, *, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return json_value(value)
    if depth > 20:
        return repr(value)[:200]
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_plain(v, depth=depth + 1) for v in items]
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(raw).decode("ascii")
    if isinstance(value, decimal.Decimal):
        return json_value(float(value))
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def json_value(value: Any) -> Any:
    """``value`` as JSON can hold it: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
