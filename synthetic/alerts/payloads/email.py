"""Alert email for SMTP: one-line subject, plain-text body, threading headers.

The subject is built with `one_line`, so no CR or LF from a check's reason
can start another header. ``Message-ID`` is derived from the transition (the
same alert gives the same id, so a re-sent outbox entry is recognisably the
same mail) and ``References`` from the incident, so trigger, escalation and
resolve of one incident thread together in a mail client.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import parseaddr

from synthetic.alerts.model import Alert
from synthetic.alerts.payloads._text import (
    format_value,
    multi_line,
    one_line,
    thresholds,
    title,
    truncate,
)

MAX_SUBJECT = 200
MAX_HEADER = 255
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def message(alert: Alert, *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The mail telling ``recipients`` about ``alert``, from ``sender``."""
    if not recipients:
        raise ValueError(f"alert {alert.dedup_key!r}: an email needs at least one recipient")
    domain = _domain(sender)
    mail = EmailMessage()
    mail["Subject"] = subject(alert)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Message-ID"] = _msgid(
        domain,
        alert.dedup_key,
        alert.action,
        alert.severity,
        alert.run_id,
        alert.started_at,
        alert.ended_at or "",
        str(alert.test),
    )
    incident = _msgid(domain, "incident", alert.dedup_key, alert.started_at)
    mail["In-Reply-To"] = incident
    mail["References"] = incident
    mail["X-Synthetic-Dedup-Key"] = _header(alert.dedup_key)
    mail["X-Synthetic-Action"] = alert.action
    mail["X-Synthetic-Severity"] = alert.severity
    mail["X-Synthetic-Priority"] = _header(alert.priority) or "none"
    if alert.test:
        mail["X-Synthetic-Test"] = "true"
    mail.set_content(body(alert))
    return mail


def subject(alert: Alert) -> str:
    """``[TEST] CRITICAL P1 health.status (production): reason``, one line, <= 200."""
    reason = one_line(alert.summary)
    return truncate(f"{title(alert)}: {reason}" if reason else title(alert), MAX_SUBJECT)


def body(alert: Alert) -> str:
    """The plain-text body: reason, value, thresholds, where, priority, runbook, run."""
    lines: list[str] = []
    if alert.test:
        lines += ["THIS IS A TEST ALERT (synthetic alerts test), not an incident.", ""]
    lines += [title(alert), "", multi_line(alert.summary) or "(no reason given)", ""]
    facts = [
        ("Value", format_value(alert)),
        ("Thresholds", thresholds(alert)),
        ("Environment", one_line(alert.environment)),
        ("Priority", one_line(alert.priority)),
        ("Severity", alert.severity),
        ("Component", one_line(alert.component or "") or "n/a"),
        ("Check", one_line(alert.check_id)),
        ("Metric", one_line(alert.metric)),
        ("Target", one_line(alert.target or "") or "n/a"),
        ("Started", one_line(alert.started_at)),
    ]
    if alert.ended_at:
        facts.append(("Ended", one_line(alert.ended_at)))
    facts += [
        ("Runbook", one_line(alert.runbook or "") or "none linked"),
        ("Run", one_line(alert.run_id)),
    ]
    lines += [f"{name + ':':<13}{text}" for name, text in facts]
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    if labels:
        lines.append(f"{'Labels:':<13}{one_line(labels)}")
    where = ", ".join(f"{k}={v}" for k, v in sorted(alert.locations.items()))
    if where:
        lines.append(f"{'Locations:':<13}{one_line(where)}")
    if alert.evidence_summary:
        lines += ["", "Evidence:", multi_line(alert.evidence_summary)]
    lines += ["", f"Incident key: {one_line(alert.dedup_key)}"]
    return "\n".join(lines) + "\n"


def _header(text: str) -> str:
    return truncate(one_line(text), MAX_HEADER)


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    domain = address.rpartition("@")[2]
    return domain if _DOMAIN.fullmatch(domain) else "synthetic.invalid"


def _msgid(domain: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"<{digest[:40]}@{domain}>"
