"""The alert: what a receiver is told about one incident transition.

Pure data. Built by the decision engine from a check's result and its
incident state; turned into each receiver's payload by `synthetic.alerts.payloads`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Action = Literal["trigger", "resolve"]
# What the transition is, for the text and for receivers that care:
# a first trigger, an escalation (warning became critical), a reminder or
# refresh of a standing incident, the one notice that it is flapping, a
# resolve; on the info route a recovery or the digest of standing warnings;
# `synthetic alerts test`; the root cause of inhibited checks is a trigger.
Kind = Literal["trigger", "escalate", "remind", "flapping", "resolve", "recovery", "digest", "test"]
# The route's severity, as the guide routes them: critical pages, warning
# goes to chat, info (recoveries, digests) goes to email.
RouteSeverity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Alert:
    """One transition of one incident (a check in an environment).

    ``dedup_key`` is stable for the incident: the same check in the same
    environment always has the same key, so a warning that becomes critical
    escalates the open incident instead of opening a second one.
    """

    dedup_key: str
    action: Action
    severity: RouteSeverity
    summary: str  # one line: the check's reason
    environment: str
    metric: str
    check_id: str
    priority: str  # P1..P4
    runbook: str | None
    started_at: str  # ISO 8601 UTC: when the incident opened
    run_id: str
    labels: Mapping[str, str] = field(default_factory=dict)
    component: str | None = None
    value: Any = None
    unit: str | None = None
    warning: str | None = None  # threshold expressions in force
    critical: str | None = None
    target: str | None = None  # the environment's base_url, masked
    ended_at: str | None = None  # set on resolve
    evidence_summary: str | None = None  # short, masked
    test: bool = False  # `synthetic alerts test`: clearly labelled, never a real incident
    kind: Kind = "trigger"
    # On an escalation, the severity receivers were told before: Alertmanager
    # identifies an alert by its labels, severity included, so the old one is
    # resolved there when the new one fires.
    previous_severity: RouteSeverity | None = None
    # With several locations: what each sees (critical, warning, ok, silent,
    # unhealthy), the evidence of the quorum's verdict.
    locations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = dict(self.labels)
        data["locations"] = dict(self.locations)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        fields = {k: v for k, v in data.items() if k in _FIELDS}
        return cls(**fields)


_FIELDS = frozenset(f.name for f in fields(Alert))
