"""Several locations, one verdict.

Runners in several places (two CI providers, two regions, the office) check
the same environment and share one state store. Each run records its
location's latest observations in the alert document (``locations``); an
incident then moves on the verdict of the locations, not on one runner's
view: a breach counts once the check's quorum of locations (``quorum = 2``,
or ``"50%"`` of those reporting) sees it, within the check's window. A
runner with a broken route cannot page anyone alone.

Pure, like the rest of the decisions: it runs inside the store's atomic
update, so runners of several locations racing on one incident decide on
each other's latest results, one after the other.

Two notices watch the locations themselves, on the ``info`` route:

- ``location.unhealthy{location}``: the runner's target-independent probe
  (``location_probe``) reached nothing; its results are left out of every
  quorum until it recovers;
- ``location.silent{location}``: no report for longer than the window; it
  neither confirms nor denies until it reports again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from synthetic.alerts.observation import Observation
from synthetic.alerts.settings import AlertSettings
from synthetic.results import metric_key
from synthetic.units import format_duration

if TYPE_CHECKING:
    from synthetic.alerts.decide import Context

LOCATION_SILENT = "location.silent"
LOCATION_UNHEALTHY = "location.unhealthy"
# A location silent this long is retired: forgotten with its silent notice.
FORGET_AFTER_S = 7 * 86400.0


def located(
    document: dict[str, Any],
    own: Sequence[Observation],
    settings: AlertSettings,
    context: Context,
) -> tuple[list[Observation], list[tuple[str, str]]]:
    """Record this location's observations in ``document``; the verdicts to decide on,
    with the notices about the locations, and the breaches below their quorum."""
    locations: dict[str, Any] = document.setdefault("locations", {})
    name = str(context.location)
    now: float = context.now
    locations[name] = {
        "at": now,
        "run_id": context.run_id,
        "healthy": context.location_healthy,
        "detail": context.location_detail,
        "results": {o.key: _kept(o) for o in own if o.state != "none"},
    }
    incidents: dict[str, Any] = document.setdefault("incidents", {})
    for gone in [n for n, e in locations.items() if now - _at(e) > FORGET_AFTER_S]:
        del locations[gone]
        incidents.pop(metric_key(LOCATION_SILENT, {"location": gone}), None)

    verdicts: list[Observation] = []
    below: list[tuple[str, str]] = []
    if context.location_healthy:  # an unhealthy location's view adds nothing to a verdict
        for observation in own:
            if observation.state == "none":
                continue
            verdict, short = _verdict(observation, locations, settings, now)
            verdicts.append(verdict)
            if short:
                below.append((observation.key, short))
    return [*verdicts, *_notices(locations, settings, context)], below


def _kept(observation: Observation) -> dict[str, Any]:
    """What another location's verdict needs: the state, and what to say about a breach."""
    facts = observation.facts if observation.state == "breach" else {}
    return {
        "state": observation.state,
        "severity": observation.severity,
        "summary": observation.facts.get("summary"),
        "facts": facts,
    }


def _verdict(
    own: Observation, locations: Mapping[str, Any], settings: AlertSettings, now: float
) -> tuple[Observation, str | None]:
    """The observation of all locations for ``own``'s key, and why a breach is below quorum."""
    facts = own.facts
    metric = str(facts.get("metric") or own.key.split("{", 1)[0])
    component = facts.get("component")
    quorum = settings.quorum_for(metric, own.key, component)
    window = settings.window_for(metric, own.key, component)
    votes: dict[str, Mapping[str, Any]] = {}
    left_out: dict[str, str] = {}
    for name, entry in sorted(locations.items()):
        if now - _at(entry) > window:
            left_out[name] = "silent"
        elif not entry.get("healthy", True):
            left_out[name] = "unhealthy"
        else:
            result = entry.get("results", {}).get(own.key)
            if isinstance(result, Mapping) and result.get("state") in ("breach", "ok"):
                votes[name] = result
    failing = [n for n, r in votes.items() if r["state"] == "breach"]
    fine = [n for n, r in votes.items() if r["state"] == "ok"]
    need = quorum.required(len(votes))
    where = _where(failing, fine, left_out)
    seen = {n: str(r.get("severity") or "ok") for n, r in votes.items()} | left_out
    if len(failing) >= need:
        critical = [n for n in failing if votes[n].get("severity") == "critical"]
        source = own.facts if own.state == "breach" else votes[failing[0]].get("facts") or {}
        summary = f"{source.get('summary') or ''} ({where})"
        return Observation(
            own.key,
            "breach",
            "critical" if len(critical) >= need else "warning",
            own.sustain_s,
            {**source, "summary": summary, "locations": seen},
        ), None
    short = None
    if failing:
        short = f"{where}: {len(failing)} of the {quorum.text} needed"
    ok_summary = f"{votes[fine[0]].get('summary') or 'ok'} ({where})" if fine else where
    return Observation(
        own.key, "ok", None, own.sustain_s, {**facts, "summary": ok_summary, "locations": seen}
    ), short


def _where(failing: Sequence[str], fine: Sequence[str], left_out: Mapping[str, str]) -> str:
    """``failing from ci-eu and office; ok from ci-us; not counted: lab (silent)``."""
    parts = []
    if failing:
        parts.append(f"failing from {_names(failing)}")
    if fine:
        parts.append(f"ok from {_names(fine)}")
    if left_out:
        parts.append(
            "not counted: " + ", ".join(f"{n} ({why})" for n, why in sorted(left_out.items()))
        )
    return "; ".join(parts)


def _names(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _notices(
    locations: Mapping[str, Any], settings: AlertSettings, context: Context
) -> list[Observation]:
    """A silent notice per location not heard from within the window, and this
    location's own health."""
    now: float = context.now
    window = settings.window_s
    found = []
    for name, entry in sorted(locations.items()):
        quiet = now - _at(entry)
        silent = quiet > window
        summary = (
            f"{name} has not reported for {format_duration(quiet)} (the window is "
            f"{format_duration(window)}): left out of quorums until it reports again"
            if silent
            else f"{name} reports again"
        )
        found.append(_notice(LOCATION_SILENT, name, silent, summary, round(quiet)))
    name = str(context.location)
    healthy = context.location_healthy
    summary = (
        f"{name} reaches its probe again"
        if healthy
        else f"{name} cannot reach anything ({context.location_detail or 'its probe failed'}): "
        "its results are left out of quorums until it recovers"
    )
    found.append(_notice(LOCATION_UNHEALTHY, name, not healthy, summary, int(not healthy)))
    return found


def _notice(metric: str, location: str, breach: bool, summary: str, value: int) -> Observation:
    labels = {"location": location}
    return Observation(
        key=metric_key(metric, labels),
        state="breach" if breach else "ok",
        severity="info" if breach else None,
        sustain_s=0.0,
        facts={
            "metric": metric,
            "check_id": f"location:{location}",
            "summary": summary,
            "priority": "P4",
            "runbook": None,
            "component": "location",
            "labels": labels,
            "value": value,
            "unit": "s" if metric == LOCATION_SILENT else None,
            "warning": None,
            "critical": None,
            "evidence_summary": None,
        },
    )


def _at(entry: Any) -> float:
    at = entry.get("at") if isinstance(entry, Mapping) else None
    return float(at) if isinstance(at, int | float) else 0.0


def matrix(document: Mapping[str, Any], settings: AlertSettings, now: float) -> dict[str, Any]:
    """The latest result of each check from each location, for ``alerts status``:
    ``{"locations": {name: {"at", "age_s", "healthy", "silent", "detail"}},
    "checks": {key: {location: state}}}`` (state: critical, warning, ok)."""
    locations = document.get("locations")
    rows: dict[str, dict[str, str]] = {}
    heads: dict[str, Any] = {}
    if not isinstance(locations, Mapping):
        return {"locations": heads, "checks": rows}
    for name, entry in sorted(locations.items()):
        if not isinstance(entry, Mapping):
            continue
        age = now - _at(entry)
        heads[name] = {
            "at": _at(entry),
            "age_s": round(age, 1),
            "healthy": bool(entry.get("healthy", True)),
            "silent": age > settings.window_s,
            "detail": str(entry.get("detail") or ""),
        }
        results = entry.get("results")
        for key, result in results.items() if isinstance(results, Mapping) else ():
            if isinstance(result, Mapping):
                state = result.get("severity") or result.get("state")
                rows.setdefault(key, {})[name] = str(state)
    return {"locations": heads, "checks": dict(sorted(rows.items()))}
