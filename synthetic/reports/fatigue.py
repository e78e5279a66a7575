"""``synthetic report fatigue``: how much each check and receiver was told, and why.

Per check, the alert rules replayed over its history (`synthetic.reports.replay`):
incidents, pages (notifications at critical severity: what the guide routes
to the pager), escalations, notifications, time to resolve (median, p90:
from the first breached round to the resolve), the share of incidents that
resolved by themselves within `QUICK_S`, flapping episodes, and
notifications outside working hours. Per receiver, its notifications, and
what the alert store holds undelivered.

Checks are ranked by noise: incidents that resolved within `QUICK_S` plus
flapping episodes. Each noisy check gets suggestions computed from its own
history: the shortest sustain that would have prevented at least half of its
quick incidents without missing a real one (one that lasted longer), and its
warning level when that fires much of the time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthetic.reports.data import Series, percentile
from synthetic.reports.document import Report, Section, Table
from synthetic.reports.inputs import Inputs
from synthetic.reports.replay import Incident, Notification, Replay, replay
from synthetic.reports.thresholds import crossed, tight_advice
from synthetic.text import iso_utc
from synthetic.units import format_duration

QUICK_S = 600.0  # an incident over within 10 minutes resolved by itself
NOISY_QUICK = 3  # quick incidents that make a check noisy (or any flapping)
SUSTAIN_LADDER_S = (60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0)
FIRES_OFTEN = 0.2  # a warning level crossed in more of the rounds gets advice
PAGE_KINDS = frozenset({"trigger", "escalate", "remind", "flapping"})
SCHEMA = "synthetic.report.fatigue/v1"


@dataclass(frozen=True)
class CheckFatigue:
    series: Series
    sustain_s: float
    replay: Replay
    end: float  # the period's end: a standing incident has lasted until then
    outside_hours: int
    suggestions: tuple[str, ...]

    @property
    def incidents(self) -> list[Incident]:
        return self.replay.incidents

    @property
    def notifications(self) -> list[Notification]:
        return self.replay.notifications

    @property
    def pages(self) -> int:
        return sum(
            1 for n in self.notifications if n.kind in PAGE_KINDS and n.severity == "critical"
        )

    @property
    def escalations(self) -> int:
        return sum(1 for i in self.incidents if i.escalated_at is not None)

    def resolve_times(self) -> list[float]:
        return [i.resolved_at - i.opened_at for i in self.incidents if i.resolved_at is not None]

    @property
    def quick(self) -> int:
        return len(quick_incidents(self.incidents))

    @property
    def noise(self) -> int:
        return self.quick + self.replay.flapping_episodes

    @property
    def noisy(self) -> bool:
        return self.quick >= NOISY_QUICK or self.replay.flapping_episodes > 0

    def to_json(self) -> dict[str, Any]:
        times = self.resolve_times()
        return {
            "check": self.series.check,
            "series": self.series.key,
            "location": self.series.location,
            "sustain_s": self.sustain_s,
            "incidents": len(self.incidents),
            "pages": self.pages,
            "escalations": self.escalations,
            "notifications": len(self.notifications),
            "resolve_median_s": statistics.median(times) if times else None,
            "resolve_p90_s": percentile(times, 0.9),
            "resolved_within_10m_share": self.quick / len(self.incidents)
            if self.incidents
            else None,
            "flapping_episodes": self.replay.flapping_episodes,
            "outside_working_hours": self.outside_hours,
            "noise": self.noise,
            "suggestions": list(self.suggestions),
            "incident_list": [_incident_json(i) for i in self.incidents],
        }


def quick_incidents(incidents: Sequence[Incident]) -> list[Incident]:
    return [
        i for i in incidents if i.resolved_at is not None and i.resolved_at - i.opened_at <= QUICK_S
    ]


def suggest_sustain(
    series: Series, inputs: Inputs, current: Replay, sustain_s: float
) -> str | None:
    """The shortest sustain of the ladder that prevents at least half of the quick
    incidents and still alerts on every real one; what it would have changed."""
    quick = {id(i) for i in quick_incidents(current.incidents)}
    real = [i for i in current.incidents if id(i) not in quick]
    total = len(current.incidents)
    for candidate in (s for s in SUSTAIN_LADDER_S if s > sustain_s):
        tried = replay(series.points, inputs.rules(series, sustain_s=candidate)).incidents
        matched = overlapping(current.incidents, tried)
        prevented = sum(1 for i in current.incidents if matched[id(i)] is None)
        if prevented == 0 or prevented * 2 < len(quick):
            continue
        delays = [
            max(0.0, match.triggered_at - i.triggered_at)
            for i in real
            if (match := matched[id(i)]) is not None
        ]
        if len(delays) < len(real):
            continue  # it would have missed a real incident
        if not real:
            tail = "and there was no real incident (none lasted over 10m)"
        elif max(delays) > 0:
            tail = (
                f"and delayed none of the {len(real)} real incidents by more than "
                f"{format_duration(max(delays))}"
            )
        else:
            tail = f"and delayed none of the {len(real)} real incidents"
        return (
            f"sustain {format_duration(candidate)} would have prevented {prevented} of "
            f"{total} alerts {tail}"
        )
    return None


def overlapping(
    incidents: Sequence[Incident], others: Sequence[Incident]
) -> dict[int, Incident | None]:
    """For each of ``incidents`` (by id), the first of ``others`` whose time overlaps
    it, or None. Both are one check's, in order and apart: one sweep."""
    found: dict[int, Incident | None] = {}
    j = 0
    for incident in incidents:
        while j < len(others) and _end(others[j]) < incident.opened_at:
            j += 1
        hit = j < len(others) and others[j].opened_at <= _end(incident)
        found[id(incident)] = others[j] if hit else None
    return found


def _end(incident: Incident) -> float:
    return incident.resolved_at if incident.resolved_at is not None else float("inf")


def fatigue_of(series: Series, inputs: Inputs) -> CheckFatigue:
    sustain_s = inputs.sustain_s(series)
    done = replay(series.points, inputs.rules(series))
    outside = sum(
        1 for n in done.notifications if n.kind in PAGE_KINDS and inputs.hours.outside(n.at)
    )
    fatigue = CheckFatigue(series, sustain_s, done, inputs.period.until, outside, ())
    if not fatigue.noisy:
        return fatigue
    suggestions = []
    sustain = suggest_sustain(series, inputs, done, sustain_s)
    if sustain:
        suggestions.append(sustain)
    spec = inputs.spec(series)
    values = series.values()
    if spec is not None and spec.warning is not None and values:
        share = crossed(spec.warning, values) / len(values)
        if share > FIRES_OFTEN:
            suggestions.append(
                tight_advice(
                    f"warning {spec.warning.text}", spec.warning, values, share, series.unit
                )
            )
    if done.flapping_episodes and not sustain:
        suggestions.append(
            f"flapped {done.flapping_episodes} times: no sustain up to "
            f"{format_duration(SUSTAIN_LADDER_S[-1])} would have kept its real incidents; "
            "look at what makes it change state"
        )
    return CheckFatigue(series, sustain_s, done, inputs.period.until, outside, tuple(suggestions))


def fatigue_report(inputs: Inputs) -> Report:
    checks = [fatigue_of(series, inputs) for series in inputs.series]
    checks = [c for c in checks if c.incidents or c.replay.flapping_episodes]
    checks.sort(key=lambda c: (-c.noise, -len(c.notifications), c.series.name))
    rows: list[tuple[str, ...]] = []
    for c in checks:
        times = c.resolve_times()
        rows.append(
            (
                c.series.name,
                str(len(c.incidents)),
                str(c.pages),
                str(c.escalations),
                str(len(c.notifications)),
                format_duration(statistics.median(times)) if times else "-",
                format_duration(percentile(times, 0.9) or 0) if times else "-",
                f"{c.quick / len(c.incidents):.0%}" if c.incidents else "-",
                str(c.replay.flapping_episodes),
                str(c.outside_hours),
            )
        )
    receivers = _receivers(checks, inputs)
    suggestions = [f"- {c.series.name}: {s}" for c in checks if c.noisy for s in c.suggestions]
    standing = [
        f"- {key}: {incident.get('severity') or 'pending'} since "
        f"{iso_utc(incident.get('opened_at') or incident.get('breach_since') or 0)}; told "
        + (
            ", ".join(
                f"{r} at {iso_utc(t.get('at', 0))}"
                for r, t in sorted(incident.get("told", {}).items())
            )
            or "nobody"
        )
        for key, incident in sorted(inputs.store.incidents.items())
        if isinstance(incident, dict) and (incident.get("active") or incident.get("breach_since"))
    ]
    silences = [
        f"- until {iso_utc(s.until)}: "
        + ", ".join(f"{k}={'|'.join(v)}" for k, v in sorted(s.matchers.items()) if v)
        + (f" ({s.reason})" if s.reason else "")
        for s in inputs.store.silences
    ]
    sections = [
        Section(
            "Checks, noisiest first",
            [
                f"Replayed with the config's rules: resolve_after {inputs.alerts.resolve_after}, "
                f"flapping at {inputs.alerts.flap_changes} changes in "
                f"{format_duration(inputs.alerts.flap_window_s)}, each check's sustain; "
                f"working hours {inputs.hours.describe()}."
            ],
            Table(
                (
                    "check",
                    "incidents",
                    "pages",
                    "escalations",
                    "notifications",
                    "resolve p50",
                    "resolve p90",
                    "over in 10m",
                    "flapping",
                    "outside hours",
                ),
                rows,
            ),
            empty="No incident in the period.",
        ),
        Section(
            "Receivers",
            table=Table(
                (
                    "receiver",
                    "notifications",
                    "triggers",
                    "escalations",
                    "reminders",
                    "resolves",
                    "outside hours",
                    "waiting",
                    "undeliverable",
                ),
                [tuple(str(v) for v in r.values()) for r in receivers],
            ),
            empty="No receiver was told anything.",
        ),
        Section("Suggestions", suggestions or ["No check is noisy."]),
        Section("Standing now (the alert store)", standing or ["No incident stands."]),
        Section("Silences in force (the alert store and the config)", silences or ["None."]),
    ]
    data = {
        "quick_s": QUICK_S,
        "working_hours": inputs.hours.describe(),
        "checks": [c.to_json() for c in checks],
        "receivers": receivers,
    }
    return Report(
        kind="fatigue",
        title="Alert fatigue",
        environment=inputs.environment,
        period="",
        coverage="",
        not_recorded=NOT_RECORDED,
        sections=sections,
        data=data,
    )


NOT_RECORDED = (
    "Notifications are replayed from the history with today's routes and rules: the alert "
    "store keeps an incident only while it stands and an alert only until it is delivered.",
    "Silenced time is not recorded: a silence keeps only its end and is forgotten once over; "
    "the replay does not hold notifications for silences (nor for root-cause inhibition).",
    "Acknowledgements are not recorded: no receiver integration reports one back.",
)
_RECEIVER_KEYS = (
    "receiver", "notifications", "triggers", "escalations", "reminders", "resolves",
    "outside_working_hours", "waiting", "undeliverable",
)  # fmt: skip


def _receivers(checks: Sequence[CheckFatigue], inputs: Inputs) -> list[dict[str, Any]]:
    names = sorted(
        {n.receiver for c in checks for n in c.notifications}
        | {e.receiver for e in (*inputs.store.outbox, *inputs.store.dead_letters)}
    )
    found = []
    for name in names:
        told = [n for c in checks for n in c.notifications if n.receiver == name]
        kinds = [n.kind for n in told]
        counts = (
            len(told),
            kinds.count("trigger") + kinds.count("flapping"),
            kinds.count("escalate"),
            kinds.count("remind"),
            kinds.count("resolve") + kinds.count("recovery"),
            sum(1 for n in told if n.kind in PAGE_KINDS and inputs.hours.outside(n.at)),
            sum(1 for e in inputs.store.outbox if e.receiver == name),
            sum(1 for e in inputs.store.dead_letters if e.receiver == name),
        )
        found.append(dict(zip(_RECEIVER_KEYS, (name, *counts), strict=True)))
    return found


def _incident_json(incident: Incident) -> dict[str, Any]:
    return {
        "opened_at": iso_utc(incident.opened_at),
        "triggered_at": iso_utc(incident.triggered_at),
        "severity": incident.severity,
        "escalated_at": None if incident.escalated_at is None else iso_utc(incident.escalated_at),
        "resolved_at": None if incident.resolved_at is None else iso_utc(incident.resolved_at),
    }
