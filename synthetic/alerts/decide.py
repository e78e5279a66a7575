"""Decisions: one run's results and the incidents so far become notifications.

Pure: data in, data out, no clock and no network, so a run can be replayed
and a decision retried when another runner changed the state in between.

Per check and environment there is one incident, keyed by a stable
``dedup_key``. Its life, across runs:

- a breach (WARNING, CRITICAL, or UNKNOWN: blind is not fine) starts a
  *pending* incident; it becomes *active* once the breach has lasted the
  check's sustain window (``sustain="2m"``, measured across runs);
- an active incident is told to the receivers its severity routes to, once;
  a warning that becomes critical *escalates* (the same ``dedup_key``); a
  receiver with ``remind_every`` is reminded while it stands;
- ``resolve_after`` OK runs in a row resolve it: every receiver that was told
  gets a resolve, and the ``info`` route a recovery;
- many state changes within ``flap_window`` mark it *flapping*: one notice,
  then nothing until it settles;
- a silence holds back triggers and reminders (resolves still go out);
- when every check that reaches a system (the BFF, Redis, PostgreSQL) finds
  it unreachable, one root-cause incident is raised for the system and the
  checks depending on it are *inhibited* rather than paging one by one.

Receivers are told what they are missing (reconciliation), so a silence or a
flap that ends, or a route added to the config, catches up by itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synthetic.alerts.model import Alert, Kind, RouteSeverity
from synthetic.alerts.observation import Observation
from synthetic.alerts.quorum import located
from synthetic.alerts.settings import AlertSettings, Receiver, Silence
from synthetic.results import CheckResult, Severity, metric_key
from synthetic.text import iso_utc
from synthetic.units import format_duration

_RANK = {"info": 0, "warning": 1, "critical": 2}
ROOT_METRIC = "target.unreachable"
EVIDENCE_SUMMARY_CHARS = 500
DIGEST_ITEMS = 20
_TARGET_NAMES = {
    "bff": "the BFF",
    "redis": "Redis",
    "postgres": "PostgreSQL",
    "logs": "the log backend",
}


@dataclass(frozen=True)
class Context:
    """What a decision needs besides the results and the state."""

    environment: str
    run_id: str
    now: float  # epoch seconds
    target: str | None = None  # the environment's base_url, masked
    # Where this runner runs from; None: one place, decisions as they always were.
    location: str | None = None
    location_healthy: bool = True  # its target-independent probe answered
    location_detail: str = ""  # what the probe found


@dataclass(frozen=True)
class Notice:
    """One alert for one receiver."""

    receiver: str
    alert: Alert


@dataclass(frozen=True)
class Status:
    """Where one incident stands after this run, for the summary and results.json."""

    key: str
    # pending | firing | resolved | silenced | flapping | inhibited | below-quorum
    state: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "state": self.state, "detail": self.detail}


@dataclass
class Decision:
    document: dict[str, Any]
    notices: list[Notice] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)


def dedup_key(environment: str, key: str) -> str:
    """The incident's key: the same check in the same environment, always."""
    return f"synthetic/{environment}/{key}"


def receivers_for(settings: AlertSettings, attributes: Mapping[str, str | None]) -> list[str]:
    """The receivers of the first matching route (and the next ones, while a
    matching route says ``continue = true``), as Alertmanager routes."""
    found: list[str] = []
    for route in settings.routes:
        if route.matches(attributes):
            if route.receiver not in found:
                found.append(route.receiver)
            if not route.continue_:
                break
    return found


def decide(
    checks: Sequence[CheckResult],
    document: Mapping[str, Any],
    settings: AlertSettings,
    context: Context,
) -> Decision:
    """The new state document, the notices to send, and each incident's status."""
    doc = copy.deepcopy(dict(document))
    incidents: dict[str, dict[str, Any]] = doc.setdefault("incidents", {})
    meta: dict[str, Any] = doc.setdefault("meta", {})
    now = context.now
    stored = [s for s in (_silence(d) for d in doc.get("silences", [])) if s and s.until > now]
    doc["silences"] = [s.to_json() for s in stored]
    silences = (*settings.silences, *stored)
    decision = Decision(document=doc)

    observations, inhibited = _root_causes(checks, settings)
    for key, target in inhibited:
        name = _TARGET_NAMES.get(target, target)
        decision.statuses.append(Status(key, "inhibited", f"{name} is unreachable"))
    if context.location is not None:
        # Inhibited per location first; then the quorum of the locations decides.
        observations, below = located(doc, observations, settings, context)
        decision.statuses.extend(Status(key, "below-quorum", detail) for key, detail in below)
    for obs in observations:
        incident = _observe(incidents.get(obs.key), obs, settings, context)
        if incident is not None:
            incidents[obs.key] = incident

    for key in sorted(incidents):
        incident = incidents[key]
        notices, status = _reconcile(incident, settings, silences, context)
        decision.notices.extend(notices)
        if status is not None:
            decision.statuses.append(status)
        if _forgettable(incident, settings, now):
            del incidents[key]

    decision.notices.extend(_digest(incidents, meta, settings, silences, context))
    return decision


# --- observations ---------------------------------------------------------


def _observation(check: CheckResult, settings: AlertSettings) -> Observation:
    severity: RouteSeverity | None = None
    if check.severity in (Severity.WARNING, Severity.UNKNOWN):
        state, severity = "breach", "warning"
    elif check.severity is Severity.CRITICAL:
        state, severity = "breach", "critical"
    else:
        state = "ok" if check.severity is Severity.OK else "none"
    return Observation(
        key=check.key,
        state=state,
        severity=severity,
        sustain_s=settings.sustain_for(check.metric, check.key, check.sustain_s),
        facts={
            "metric": check.metric,
            "check_id": check.id,
            "summary": check.reason,
            "priority": check.priority or "P3",
            "runbook": check.runbook,
            "component": check.component,
            "labels": dict(check.labels),
            "value": check.value,
            "unit": check.unit,
            "warning": check.warning,
            "critical": check.critical,
            "evidence_summary": _evidence(check.evidence),
        },
    )


def _root_causes(
    checks: Sequence[CheckResult], settings: AlertSettings
) -> tuple[list[Observation], list[tuple[str, str]]]:
    """Observations to decide on, with root causes in place of their symptoms.

    A system is down when the checks that reach it and measured this run all
    found it unreachable (one timeout among many answers is that check's own
    incident, not an outage). The system then gets one observation of its
    own, and breaches of checks depending on it are inhibited. When they all
    answer, the system's observation is OK, which resolves its incident.
    """
    observations = {check.key: _observation(check, settings) for check in checks}
    down: dict[str, list[CheckResult]] = {}
    answered: set[str] = set()
    # The systems the checks say they reach (their results carry it): no list
    # of known targets here, so a new kind of target needs no change to decide.
    for target in sorted({t for check in checks for t in check.reaches}):
        reaching = [
            c
            for c in checks
            if target in c.reaches
            and c.severity is not Severity.SKIPPED
            and c.unreachable in (None, target)
        ]
        if not reaching:
            continue
        failed = [c for c in reaching if c.unreachable == target]
        if len(failed) == len(reaching):
            down[target] = failed
        elif not failed:
            answered.add(target)

    inhibited: list[tuple[str, str]] = []
    for check in checks:
        obs = observations[check.key]
        cause = next((t for t in check.depends_on if t in down), None)
        if cause is not None and obs.state == "breach":
            inhibited.append((check.key, cause))
            del observations[check.key]

    for target, failed in down.items():
        root = _root_observation(target, failed, settings)
        observations[root.key] = root
    for target in answered:
        key = metric_key(ROOT_METRIC, {"target": target})
        # Named like its breach, so a quorum set by metric or component finds both.
        facts = {"summary": f"{target} answers", "metric": ROOT_METRIC, "component": target}
        observations[key] = Observation(key, "ok", None, 0.0, facts)
    return list(observations.values()), inhibited


def _root_observation(
    target: str, failed: Sequence[CheckResult], settings: AlertSettings
) -> Observation:
    first = min(failed, key=lambda c: (c.priority or "P3", c.id))
    name = _TARGET_NAMES.get(target, target)
    labels = {"target": target}
    key = metric_key(ROOT_METRIC, labels)
    count = len(failed)
    return Observation(
        key=key,
        state="breach",
        severity="critical",
        sustain_s=settings.sustain_for(ROOT_METRIC, key, min(c.sustain_s for c in failed)),
        facts={
            "metric": ROOT_METRIC,
            "check_id": f"target:{target}",
            "summary": f"{name} is unreachable: {count} check{'s' * (count != 1)} could not reach "
            f"it (the first: {first.reason})",
            "priority": first.priority or "P1",
            "runbook": first.runbook,
            "component": target,
            "labels": labels,
            "value": count,
            "unit": "checks",
            "warning": None,
            "critical": "unreachable",
            "evidence_summary": _evidence([c.id for c in failed]),
        },
    )


def _observe(
    incident: dict[str, Any] | None,
    obs: Observation,
    settings: AlertSettings,
    context: Context,
) -> dict[str, Any] | None:
    """The incident after one observation (None: there is none to keep)."""
    now = context.now
    if obs.state == "none" or (incident is None and obs.state == "ok"):
        return incident
    if incident is None:
        incident = {
            "dedup_key": dedup_key(context.environment, obs.key),
            "active": False,
            "severity": None,
            "told": {},
            "changes": [],
            "ok_streak": 0,
            "breach_since": None,
            "flapping": False,
        }
    _flap(incident, obs.state, settings, now)
    if obs.state == "breach":
        assert obs.severity is not None
        incident["ok_streak"] = 0
        incident["facts"] = obs.facts
        since = incident.get("breach_since") or now
        incident["breach_since"] = since
        incident["sustain_s"] = obs.sustain_s
        if incident["active"]:
            incident["severity"] = _higher(incident["severity"], obs.severity)
        else:
            severity = _higher(incident.get("pending_severity"), obs.severity)
            incident["pending_severity"] = severity
            if now - since >= obs.sustain_s:
                incident.update(active=True, severity=severity, opened_at=since)
                incident.pop("pending_severity", None)
        return incident
    # OK
    incident["breach_since"] = None
    incident.pop("pending_severity", None)
    incident["ok_summary"] = obs.facts.get("summary")
    if incident["active"]:
        incident["ok_streak"] = incident.get("ok_streak", 0) + 1
        if incident["ok_streak"] >= settings.resolve_after:
            incident.update(active=False, resolved_at=now)
    return incident


def _flap(incident: dict[str, Any], state: str, settings: AlertSettings, now: float) -> None:
    """Count state changes in the window; flapping starts at ``flap_changes``
    and ends at half of it (hysteresis, so it does not flap in and out)."""
    changes = [t for t in incident.get("changes", []) if t > now - settings.flap_window_s]
    last = incident.get("last_state")
    if last is not None and last != state:
        changes.append(now)
    incident["changes"] = changes
    incident["last_state"] = state
    if not incident.get("flapping") and len(changes) >= settings.flap_changes:
        incident["flapping"] = True
    elif incident.get("flapping") and len(changes) <= settings.flap_changes // 2:
        incident["flapping"] = False
        incident["flap_noticed"] = False


# --- notifications ----------------------------------------------------------


def _reconcile(
    incident: dict[str, Any],
    settings: AlertSettings,
    silences: Sequence[Silence],
    context: Context,
) -> tuple[list[Notice], Status | None]:
    """Tell each receiver what it is missing about ``incident``."""
    facts = incident.get("facts", {})
    key = _key_of(incident, context)
    told: dict[str, dict[str, Any]] = incident.setdefault("told", {})
    now = context.now
    attributes = _attributes(facts, context.environment)
    silence = next((s for s in silences if _silenced(s, attributes, key, now)), None)
    active = incident["active"]
    severity: str = incident.get("severity") or "warning"
    notices: list[Notice] = []

    if incident.get("flapping"):
        if active and not incident.get("flap_noticed"):
            incident["flap_noticed"] = True
            if silence is None:
                for receiver in receivers_for(settings, {**attributes, "severity": severity}):
                    notices.append(
                        Notice(receiver, _alert(incident, context, "trigger", severity, "flapping"))
                    )
                    told[receiver] = {
                        "severity": _higher(told.get(receiver, {}).get("severity"), severity),
                        "at": now,
                    }
        changes = len(incident.get("changes", []))
        window = format_duration(settings.flap_window_s)
        return notices, Status(
            key, "flapping", f"flapping: {changes} changes in {window}; notifications held"
        )

    if active:
        if silence is not None:
            return notices, Status(key, "silenced", f"silenced until {iso_utc(silence.until)}")
        was = max((_RANK[t["severity"]] for t in told.values()), default=-1)
        for receiver in receivers_for(settings, {**attributes, "severity": severity}):
            previous = told.get(receiver)
            kind: Kind
            if previous is None:
                kind = "escalate" if 0 <= was < _RANK[severity] else "trigger"
            elif _RANK[previous["severity"]] < _RANK[severity]:
                kind = "escalate"
            elif _reminder_due(settings.receivers.get(receiver), previous, now):
                kind = "remind"
            else:
                continue
            before = previous["severity"] if previous and kind == "escalate" else None
            alert = _alert(incident, context, "trigger", severity, kind, previous=before)
            notices.append(Notice(receiver, alert))
            told[receiver] = {"severity": severity, "at": now}
        opened = iso_utc(incident.get("opened_at") or now)
        return notices, Status(key, "firing", f"{severity} since {opened}")

    if told:
        for receiver, previous in sorted(told.items()):
            notices.append(
                Notice(
                    receiver, _alert(incident, context, "resolve", previous["severity"], "resolve")
                )
            )
        recovery = receivers_for(settings, {**attributes, "severity": "info"})
        for receiver in recovery:
            if receiver not in told:
                notices.append(
                    Notice(receiver, _alert(incident, context, "resolve", "info", "recovery"))
                )
        incident["told"] = {}
        return notices, Status(key, "resolved", f"resolved after {settings.resolve_after} OK runs")

    since = incident.get("breach_since")
    if since is not None:
        sustain = incident.get("sustain_s", 0.0)
        detail = (
            f"pending: breached for {format_duration(now - since)} of {format_duration(sustain)}"
        )
        return notices, Status(key, "pending", detail)
    return notices, None


def _reminder_due(receiver: Receiver | None, told: Mapping[str, Any], now: float) -> bool:
    if receiver is None or receiver.remind_every_s is None:
        return False
    return bool(now - float(told["at"]) >= receiver.remind_every_s)


def _silenced(silence: Silence, attributes: Mapping[str, str | None], key: str, now: float) -> bool:
    # A silence's `check` may name the check id (pytest node id) or its key.
    return silence.covers(attributes, now) or silence.covers({**attributes, "check": key}, now)


def _forgettable(incident: Mapping[str, Any], settings: AlertSettings, now: float) -> bool:
    """Nothing left to remember: not active, nobody told, no pending breach,
    and no recent state changes (which flap detection still needs)."""
    recent = [t for t in incident.get("changes", []) if t > now - settings.flap_window_s]
    return not (
        incident.get("active")
        or incident.get("told")
        or incident.get("breach_since")
        or incident.get("flapping")
        or recent
    )


def _digest(
    incidents: Mapping[str, Mapping[str, Any]],
    meta: dict[str, Any],
    settings: AlertSettings,
    silences: Sequence[Silence],
    context: Context,
) -> list[Notice]:
    """Every ``digest_every``, one info alert listing the standing warnings."""
    if settings.digest_every_s is None:
        return []
    now = context.now
    last = meta.get("digest_at")
    if not isinstance(last, int | float):
        meta["digest_at"] = now  # a full period from the first run
        return []
    if now - last < settings.digest_every_s:
        return []
    meta["digest_at"] = now
    standing = [
        (key, incident)
        for key, incident in sorted(incidents.items())
        if incident.get("active") and incident.get("severity") == "warning"
    ]
    if not standing:
        return []
    lines = [
        f"{_key_of(incident, context)}: {incident.get('facts', {}).get('summary', '')} "
        f"(since {iso_utc(incident.get('opened_at') or now)})"
        for _, incident in standing[:DIGEST_ITEMS]
    ]
    if len(standing) > DIGEST_ITEMS:
        lines.append(f"... and {len(standing) - DIGEST_ITEMS} more")
    count = len(standing)
    alert = Alert(
        dedup_key=f"synthetic/{context.environment}/digest",
        action="trigger",
        severity="info",
        summary=f"{count} standing warning{'s' * (count != 1)}: "
        + ", ".join(key for key, _ in standing[:5]),
        environment=context.environment,
        metric="digest",
        check_id="digest",
        priority="P4",
        # Every alert carries a runbook: the digest, that of its first warning.
        runbook=next((i.get("facts", {}).get("runbook") for _, i in standing), None),
        started_at=iso_utc(now),
        run_id=context.run_id,
        target=context.target,
        evidence_summary="\n".join(lines),
        kind="digest",
    )
    attributes = {"severity": "info", "environment": context.environment, "metric": "digest"}
    return [Notice(r, alert) for r in receivers_for(settings, attributes)]


# --- helpers ------------------------------------------------------------------


def _alert(
    incident: Mapping[str, Any],
    context: Context,
    action: str,
    severity: str,
    kind: Kind,
    *,
    previous: str | None = None,
) -> Alert:
    facts = incident.get("facts", {})
    summary = str(facts.get("summary") or "")
    if action == "resolve":
        summary = f"recovered: {incident.get('ok_summary') or summary}"
    elif kind == "remind":
        summary = f"still {severity}: {summary}"
    elif kind == "flapping":
        summary = (
            f"flapping: {len(incident.get('changes', []))} state changes recently; "
            f"notifications are held until it settles. Last: {summary}"
        )
    opened = incident.get("opened_at") or incident.get("breach_since") or context.now
    return Alert(
        dedup_key=incident["dedup_key"],
        action="resolve" if action == "resolve" else "trigger",
        severity=severity,  # type: ignore[arg-type]
        summary=summary,
        environment=context.environment,
        metric=str(facts.get("metric", "")),
        check_id=str(facts.get("check_id", "")),
        priority=str(facts.get("priority") or "P3"),
        runbook=facts.get("runbook"),
        started_at=iso_utc(opened),
        run_id=context.run_id,
        labels=dict(facts.get("labels") or {}),
        component=facts.get("component"),
        value=facts.get("value"),
        unit=facts.get("unit"),
        warning=facts.get("warning"),
        critical=facts.get("critical"),
        target=context.target,
        ended_at=iso_utc(context.now) if action == "resolve" else None,
        evidence_summary=facts.get("evidence_summary"),
        kind=kind,
        previous_severity=previous,  # type: ignore[arg-type]
        locations=dict(facts.get("locations") or {}),
    )


def _key_of(incident: Mapping[str, Any], context: Context) -> str:
    return str(incident["dedup_key"]).removeprefix(f"synthetic/{context.environment}/")


def _attributes(facts: Mapping[str, Any], environment: str) -> dict[str, str | None]:
    return {
        "metric": facts.get("metric"),
        "component": facts.get("component"),
        "priority": facts.get("priority"),
        "check": facts.get("check_id"),
        "environment": environment,
    }


def _higher(a: str | None, b: str | None) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a if _RANK[a] >= _RANK[b] else b


def _silence(data: Any) -> Silence | None:
    try:
        return Silence.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None  # a damaged entry is dropped rather than silencing everything


def _evidence(evidence: Any) -> str | None:
    if evidence in (None, "", [], {}):
        return None
    text = evidence if isinstance(evidence, str) else json.dumps(evidence, ensure_ascii=False)
    if len(text) <= EVIDENCE_SUMMARY_CHARS:
        return text
    return text[: EVIDENCE_SUMMARY_CHARS - 1] + "…"


def describe_notices(notices: Iterable[Notice]) -> list[str]:
    """One line per notice: ``pagerduty-oncall: trigger critical health.status``."""
    return [
        f"{n.receiver}: {n.alert.kind} {n.alert.severity} {_key_or_metric(n.alert)}"
        for n in notices
    ]


def _key_or_metric(alert: Alert) -> str:
    return alert.dedup_key.split("/", 2)[-1] if alert.dedup_key.count("/") >= 2 else alert.metric


__all__ = ["Context", "Decision", "Notice", "Status", "decide", "dedup_key", "receivers_for"]
