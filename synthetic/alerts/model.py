"""The alert: what a receiver is told about one incident transition.

Pure data. Built by the decision engine from a check's result and its
incident state; turned into each receiver's payload by `synthetic.alerts.payloads`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["trigger", "resolve"]
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
