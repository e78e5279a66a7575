"""The alert pipeline's incident rules replayed over one check's history (pure).

The alert store keeps an incident only while it stands, and an alert only
until it is delivered: what was sent last month is not recorded anywhere.
So the reports replay the rules of `synthetic.alerts.decide` for one check
over its rows, round by round, with the config's settings: a breach
(WARNING, CRITICAL, UNKNOWN) opens a pending incident, which becomes active
after ``sustain_s``; ``resolve_after`` OK rounds in a row resolve it;
``flap_changes`` state changes within ``flap_window_s`` make it flapping (one
notice, then nothing until half as many remain). Receivers come from the
config's routes (``receivers``). The same replay with another ``sustain_s``
answers "what would a longer sustain have prevented".

Not replayed: silences (a silence records only its end, and is forgotten
once over), root-cause inhibition (it needs every check of a round at once)
and the daily digest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from synthetic.reports.data import Point

RANK = {"info": 0, "warning": 1, "critical": 2}
BREACH = {"warning": "warning", "unknown": "warning", "critical": "critical"}


@dataclass(frozen=True)
class Notification:
    at: float
    receiver: str
    kind: str  # trigger | escalate | remind | flapping | resolve | recovery
    severity: str  # critical | warning | info


@dataclass(eq=False)  # compared by identity: two incidents are never the same one
class Incident:
    """One incident: from its breach's first round to its resolve."""

    opened_at: float  # the first breached round (as the pipeline's `opened_at`)
    triggered_at: float  # the round it became active (sustain met)
    severity: str  # when it became active
    escalated_at: float | None = None
    resolved_at: float | None = None  # None: still standing at the end of the rows
    breached_until: float | None = None  # the first OK round after its last breach

    def lasted(self, end: float) -> float:
        return (self.resolved_at if self.resolved_at is not None else end) - self.opened_at


@dataclass
class Replay:
    incidents: list[Incident] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    flapping_episodes: int = 0


@dataclass(frozen=True)
class Rules:
    sustain_s: float
    resolve_after: int
    flap_window_s: float
    flap_changes: int
    receivers: Callable[[str], Sequence[str]]  # severity -> the receivers routed
    remind_every: Callable[[str], float | None] = lambda _receiver: None


@dataclass
class _State:
    active: bool = False
    severity: str | None = None
    pending: str | None = None
    since: float | None = None
    ok_streak: int = 0
    changes: deque[float] = field(default_factory=deque)  # oldest first
    last: str | None = None
    flapping: bool = False
    flap_noticed: bool = False
    told: dict[str, tuple[str, float]] = field(default_factory=dict)  # receiver: severity, at
    incident: Incident | None = None


def replay(points: Sequence[Point], rules: Rules) -> Replay:
    """What the pipeline would have decided over ``points`` (oldest first)."""
    out = Replay()
    state: _State | None = None
    for point in points:
        observed = (
            "breach" if point.severity in BREACH else "ok" if point.severity == "ok" else None
        )
        if observed is None or (state is None and observed == "ok"):
            continue
        if state is None:
            state = _State()
        _flap(state, observed, rules, point.at, out)
        if observed == "breach":
            _breach(state, BREACH[point.severity], rules, point.at, out)
        else:
            _ok(state, rules, point.at)
        _tell(state, rules, point.at, out)
        if _forgettable(state, rules, point.at):
            state = None
    return out


def _flap(state: _State, observed: str, rules: Rules, now: float, out: Replay) -> None:
    changes = state.changes
    while changes and changes[0] <= now - rules.flap_window_s:
        changes.popleft()
    if state.last is not None and state.last != observed:
        changes.append(now)
    state.last = observed
    if not state.flapping and len(changes) >= rules.flap_changes:
        state.flapping = True
        out.flapping_episodes += 1
    elif state.flapping and len(changes) <= rules.flap_changes // 2:
        state.flapping = False
        state.flap_noticed = False


def _breach(state: _State, severity: str, rules: Rules, now: float, out: Replay) -> None:
    state.ok_streak = 0
    state.since = state.since if state.since is not None else now
    if state.incident is not None:
        state.incident.breached_until = None
    if state.active:
        state.severity = _higher(state.severity, severity)
        incident = state.incident
        if (
            incident is not None
            and incident.severity != "critical"
            and state.severity == "critical"
            and incident.escalated_at is None
        ):
            incident.escalated_at = now
        return
    state.pending = _higher(state.pending, severity)
    if now - state.since >= rules.sustain_s:
        state.active, state.severity, state.pending = True, state.pending, None
        state.incident = Incident(state.since, now, state.severity or "warning")
        out.incidents.append(state.incident)


def _ok(state: _State, rules: Rules, now: float) -> None:
    state.since = None
    state.pending = None
    if state.incident is not None and state.incident.breached_until is None:
        state.incident.breached_until = now
    if state.active:
        state.ok_streak += 1
        if state.ok_streak >= rules.resolve_after:
            state.active = False
            if state.incident is not None:
                state.incident.resolved_at = now
            state.incident = None


def _tell(state: _State, rules: Rules, now: float, out: Replay) -> None:
    severity = state.severity or "warning"
    if state.flapping:
        if state.active and not state.flap_noticed:
            state.flap_noticed = True
            for receiver in rules.receivers(severity):
                out.notifications.append(Notification(now, receiver, "flapping", severity))
                before = state.told.get(receiver, (None, now))[0]
                state.told[receiver] = (_higher(before, severity) or severity, now)
        return
    if state.active:
        was = max((RANK[s] for s, _ in state.told.values()), default=-1)
        for receiver in rules.receivers(severity):
            previous = state.told.get(receiver)
            if previous is None:
                kind = "escalate" if 0 <= was < RANK[severity] else "trigger"
            elif RANK[previous[0]] < RANK[severity]:
                kind = "escalate"
            elif _reminder_due(rules.remind_every(receiver), previous[1], now):
                kind = "remind"
            else:
                continue
            out.notifications.append(Notification(now, receiver, kind, severity))
            state.told[receiver] = (severity, now)
        return
    if state.told:
        for receiver, (told, _) in sorted(state.told.items()):
            out.notifications.append(Notification(now, receiver, "resolve", told))
        for receiver in rules.receivers("info"):
            if receiver not in state.told:
                out.notifications.append(Notification(now, receiver, "recovery", "info"))
        state.told = {}


def _reminder_due(every: float | None, told_at: float, now: float) -> bool:
    return every is not None and now - told_at >= every


def _forgettable(state: _State, rules: Rules, now: float) -> bool:
    recent = bool(state.changes) and state.changes[-1] > now - rules.flap_window_s
    return not (state.active or state.told or state.since is not None or state.flapping or recent)


def _higher(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if RANK[a] >= RANK[b] else b
