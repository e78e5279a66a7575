"""PagerDuty Events API v2 bodies (``POST /v2/enqueue``).

Limits (REFERENCE.md): ``dedup_key`` 255 characters, ``payload.summary`` 1024
characters, the whole body 512 KB. Fields PagerDuty sets no limit for
(``source``, ``component``, ``group``, ``class``) are cut to 255 characters
so the body's size stays predictable.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlsplit

from synthetic.alerts.model import Alert
from synthetic.alerts.payloads._text import (
    format_value,
    json_size,
    one_line,
    thresholds,
    title,
    truncate,
)
from synthetic.results import json_safe

MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
# "512 KB" read the smaller way (1000-byte KB), measured as ASCII-escaped JSON.
MAX_BODY_BYTES = 512_000
MAX_FIELD = 255
MAX_URL = 2048
CLIENT = "synthetic"

_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
# What is left of a long key before its hash: enough to read which check it is.
_KEY_HEAD = MAX_DEDUP_KEY - 1 - 64


def dedup_key(key: str) -> str:
    """``key`` as PagerDuty accepts it: unchanged up to 255 characters.

    A longer key becomes its first 190 characters, ``~``, and the SHA-256 of
    the whole key (hex): stable across runs and processes, so trigger and
    resolve of one incident still share it, and two long keys that differ
    only at the end still differ.
    """
    if len(key) <= MAX_DEDUP_KEY:
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{key[:_KEY_HEAD]}~{digest}"


def event(alert: Alert, *, routing_key: str, client_url: str | None = None) -> dict[str, Any]:
    """The Events API v2 body for ``alert``: a trigger, or a resolve.

    A resolve carries only what PagerDuty reads from one: ``routing_key``,
    ``dedup_key`` and ``event_action``. A trigger's ``custom_details`` is
    shrunk, evidence first, when the body would pass 512 KB.
    """
    if alert.action == "resolve":
        return {
            "routing_key": routing_key,
            "dedup_key": dedup_key(alert.dedup_key),
            "event_action": "resolve",
        }
    payload: dict[str, Any] = {
        "summary": truncate(_summary(alert), MAX_SUMMARY),
        "source": truncate(_source(alert), MAX_FIELD),
        "severity": _SEVERITY[alert.severity],
        "timestamp": truncate(alert.started_at, MAX_FIELD),
        "group": truncate(one_line(alert.environment), MAX_FIELD),
        "class": truncate(one_line(alert.metric), MAX_FIELD),
        "custom_details": _details(alert, evidence=alert.evidence_summary),
    }
    if alert.component:
        payload["component"] = truncate(one_line(alert.component), MAX_FIELD)
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert.dedup_key),
        "payload": payload,
        "client": CLIENT,
    }
    if client_url:
        body["client_url"] = client_url
    if alert.runbook:
        body["links"] = [
            {
                "href": truncate(alert.runbook, MAX_URL),
                "text": truncate(one_line(f"Runbook: {alert.runbook}"), MAX_FIELD),
            }
        ]
    _fit(body, alert)
    return body


def _summary(alert: Alert) -> str:
    reason = one_line(alert.summary)
    return f"{title(alert)}: {reason}" if reason else title(alert)


def _source(alert: Alert) -> str:
    """The target's host (``portal.example.com``), else the environment."""
    if alert.target:
        try:
            host = urlsplit(alert.target.strip()).hostname
        except ValueError:
            host = None
        source = one_line(host or alert.target)
        if source:
            return source
    return one_line(alert.environment) or CLIENT


def _details(alert: Alert, *, evidence: str | None, cap: int | None = None) -> dict[str, Any]:
    def cut(text: str) -> str:
        return text if cap is None else truncate(text, cap)

    def opt(text: str | None) -> str | None:
        return None if text is None else cut(text)

    details: dict[str, Any] = {
        "value": json_safe(alert.value, max_chars=cap or 65_536),
        "unit": opt(alert.unit),
        "display_value": format_value(alert),
        "warning_threshold": opt(alert.warning),
        "critical_threshold": opt(alert.critical),
        "thresholds": cut(thresholds(alert)),
        "environment": cut(alert.environment),
        "priority": cut(alert.priority),
        "metric": cut(alert.metric),
        "check_id": cut(alert.check_id),
        "run_id": cut(alert.run_id),
        "started_at": cut(alert.started_at),
        "runbook": opt(alert.runbook),
        "labels": {cut(k): cut(v) for k, v in sorted(alert.labels.items())},
        "target": opt(alert.target),
        "evidence_summary": evidence,
    }
    if alert.test:
        details["test"] = True
    if alert.locations:
        details["locations"] = {cut(k): cut(v) for k, v in sorted(alert.locations.items())}
    if alert.dedup_key != dedup_key(alert.dedup_key):
        details["incident_key"] = cut(alert.dedup_key)
    return details


def _fit(body: dict[str, Any], alert: Alert) -> None:
    """Shrink ``custom_details`` until the body is within 512 KB: evidence first."""
    payload = body["payload"]
    excess = json_size(body) - MAX_BODY_BYTES
    evidence = alert.evidence_summary
    if excess > 0 and evidence:
        # Keep the share of the evidence that fits, by its bytes per character
        # (1 to 12 escaped), a little less each time it still does not fit.
        size = json_size(evidence)
        keep = len(evidence) * max(0, size - excess - 16) // size
        while excess > 0 and keep > 0:
            payload["custom_details"] = _details(alert, evidence=truncate(evidence, keep))
            excess = json_size(body) - MAX_BODY_BYTES
            keep = keep * 9 // 10 if excess > 0 else keep
        if excess > 0:
            payload["custom_details"] = _details(alert, evidence=None)
            excess = json_size(body) - MAX_BODY_BYTES
    cap = 4096
    while excess > 0 and cap >= 16:
        payload["custom_details"] = _details(alert, evidence=None, cap=cap)
        excess = json_size(body) - MAX_BODY_BYTES
        cap //= 4
    if excess > 0:
        # Labels by the thousand: keep what identifies, drop the rest.
        payload["custom_details"] = {
            "priority": truncate(alert.priority, MAX_FIELD),
            "check_id": truncate(alert.check_id, MAX_FIELD),
            "run_id": truncate(alert.run_id, MAX_FIELD),
            "truncated": True,
        }
