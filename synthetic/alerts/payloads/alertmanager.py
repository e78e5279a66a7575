"""Alertmanager API v2 postable alerts (``POST /api/v2/alerts``, a JSON array).

Labels identify an alert, annotations describe it (REFERENCE.md). Alertmanager
answers 400 for an invalid label name or an ``endsAt`` before ``startsAt``,
so label names are made to match ``[a-zA-Z_][a-zA-Z0-9_]*`` and ``endsAt`` is
never earlier than ``startsAt``.

The labels are a function of the incident only (check, environment, metric,
severity, priority, component, the check's labels, test or not): never of the
run, the value or the time, so a resolve matches its trigger. ``severity`` is
a label, as Prometheus rules have it, so the decision engine must give a
resolve the severity of the trigger it resolves; an escalation from warning
to critical is, to Alertmanager, a second alert.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import Any

from synthetic.alerts.model import Alert
from synthetic.alerts.payloads._text import (
    format_value,
    multi_line,
    one_line,
    thresholds,
    title,
    truncate,
)

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_SUMMARY = 1024
MAX_DESCRIPTION = 8192

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def label_name(name: str) -> str:
    """``name`` as a valid label name: other characters become ``_``."""
    name = _INVALID.sub("_", name)
    if not name or name[0].isdigit():
        name = f"_{name}"
    return name


def labels(alert: Alert) -> dict[str, str]:
    """The labels that identify ``alert``'s incident, sorted by name.

    The framework's own labels come first and win a clash; a check label whose
    sanitised name is taken gets ``_2``, ``_3``... in the order of the
    original names, so the result is the same every time. Empty values are
    left out (Alertmanager treats them as absent).
    """
    own = {
        "alertname": label_name(alert.metric.replace(".", "_")) if alert.metric else "synthetic",
        "environment": alert.environment,
        "severity": alert.severity,
        "priority": alert.priority,
        "component": alert.component or "",
        "check_id": alert.check_id,
    }
    if alert.test:
        own["test"] = "true"
    result = {name: value for name, value in own.items() if value}
    taken = set(own)
    for original, value in sorted(alert.labels.items()):
        name = base = label_name(original)
        n = 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        if value:
            result[name] = value
    return dict(sorted(result.items()))


def alerts(
    alerts: Sequence[Alert],
    *,
    generator_url: str | None = None,
    expires_at: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """One postable alert per ``Alert``, in order.

    ``startsAt`` is when the incident opened; a resolve has ``endsAt`` = its
    ``ended_at`` (its ``started_at`` when it has none, or an earlier one), so
    Alertmanager resolves it at once. A trigger has ``endsAt`` = ``expires_at``
    (never before ``startsAt``), or none: the sender re-sends it while it
    fires, and Alertmanager forgets it when the sender stops. Times are
    RFC 3339 in UTC; a naive ``expires_at`` is UTC.
    """
    return [_alert(alert, generator_url, expires_at) for alert in alerts]


def _alert(
    alert: Alert, generator_url: str | None, expires_at: datetime.datetime | None
) -> dict[str, Any]:
    started = parse_time(alert.started_at)
    body: dict[str, Any] = {"labels": labels(alert), "annotations": describe(alert)}
    if started is not None:
        body["startsAt"] = _rfc3339(started)
    if alert.action == "trigger" and expires_at is not None:
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=datetime.UTC)
        if started is not None and expires_at < started:
            expires_at = started
        body["endsAt"] = _rfc3339(expires_at)
    if alert.action == "resolve":
        ended = parse_time(alert.ended_at) if alert.ended_at else None
        if ended is None or (started is not None and ended < started):
            ended = started
        if ended is None:
            raise ValueError(
                f"alert {alert.dedup_key!r}: a resolve needs a valid ended_at or started_at, "
                f"got {alert.ended_at!r} and {alert.started_at!r}"
            )
        body["endsAt"] = _rfc3339(ended)
    if generator_url:
        body["generatorURL"] = generator_url
    return body


def describe(alert: Alert) -> dict[str, str]:
    """What describes ``alert``: summary, description, runbook, value, thresholds."""
    reason = one_line(alert.summary)
    notes = {
        "summary": truncate(f"{title(alert)}: {reason}" if reason else title(alert), MAX_SUMMARY),
        "description": truncate(_description(alert), MAX_DESCRIPTION),
        "value": format_value(alert),
        "thresholds": thresholds(alert),
        "warning": one_line(alert.warning or ""),
        "critical": one_line(alert.critical or ""),
        "priority": alert.priority,
        "run_id": alert.run_id,
        "runbook_url": alert.runbook or "",
    }
    return {name: value for name, value in notes.items() if value}


def _description(alert: Alert) -> str:
    lines = [multi_line(alert.summary) or "(no reason given)"]
    if alert.test:
        lines.insert(0, "This is a test alert (synthetic alerts test), not an incident.")
    if alert.evidence_summary:
        lines.append(f"Evidence: {multi_line(alert.evidence_summary)}")
    return "\n".join(lines)


def parse_time(text: str) -> datetime.datetime | None:
    """An ISO 8601 time (naive means UTC), or None when ``text`` is not one."""
    try:
        parsed = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def _rfc3339(moment: datetime.datetime) -> str:
    try:
        moment = moment.astimezone(datetime.UTC)
    except OverflowError:  # year 1 or 9999 with an offset: keep the offset
        return moment.isoformat()
    return moment.isoformat().replace("+00:00", "Z")
