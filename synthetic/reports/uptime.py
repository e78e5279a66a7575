"""``synthetic report uptime``: availability, incidents and the error budget.

A round counts as available for a check unless the check was CRITICAL in it
(WARNING and UNKNOWN count as available; SKIPPED rounds do not count at all).
A component, and the whole environment, is available in a round unless one of
its checks was CRITICAL. Availability is the share of available rounds, over
the last 7, 30 and 90 days of the period (each with its number of rounds, so
a window longer than the history shows it; one longer than the period is not
computed).

An incident is a check's run of CRITICAL rounds: from the first to the first
round after it that was not CRITICAL. The error budget is ``1 - objective`` of
the period's rounds; a burn rate is a window's unavailable share divided by
that (1 spends the budget exactly over the period; the SRE workbook pages at
14.4 over 1h and 6 over 6h).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from synthetic.reports.data import Point, Series
from synthetic.reports.document import Report, Section, Table
from synthetic.reports.inputs import Inputs
from synthetic.reports.svg import share_bar
from synthetic.text import iso_utc
from synthetic.units import format_duration

DAY = 86400.0
WINDOWS = (("7d", 7 * DAY), ("30d", 30 * DAY), ("90d", 90 * DAY))
BURN_WINDOWS = (("1h", 3600.0), ("6h", 6 * 3600.0), ("1d", DAY), ("3d", 3 * DAY))
FAST_BURN = {"1h": 14.4, "6h": 6.0}
SCHEMA = "synthetic.report.uptime/v1"


@dataclass(frozen=True)
class Outage:
    series: Series
    start: float
    end: float | None  # None: still critical at the end of the period
    priority: str

    def duration(self, until: float) -> float:
        return (self.end if self.end is not None else until) - self.start


def availability(
    rounds: Iterable[tuple[float, bool]], since: float, until: float
) -> tuple[float | None, int]:
    """The available share of the rounds in ``[since, until)``, and how many there were."""
    inside = [up for at, up in rounds if since <= at < until]
    return (sum(inside) / len(inside) if inside else None), len(inside)


def windows(
    rounds: Sequence[tuple[float, bool]], inputs: Inputs
) -> dict[str, tuple[float | None, int]]:
    """Availability over each of `WINDOWS` that fits in the period (a longer one: none)."""
    until = inputs.period.until
    return {
        name: availability(rounds, until - length, until)
        if length <= inputs.period.length_s + 1
        else (None, 0)
        for name, length in WINDOWS
    }


def series_rounds(series: Series) -> list[tuple[float, bool]]:
    return [(p.at, p.severity != "critical") for p in series.points if p.severity != "skipped"]


def grouped_rounds(members: Sequence[Series]) -> list[tuple[float, bool]]:
    """Rounds of a group of checks: available unless one of them was CRITICAL."""
    rounds: dict[tuple[str, float], bool] = defaultdict(lambda: True)
    for series in members:
        for at, up in series_rounds(series):
            rounds[(series.location, at)] = rounds[(series.location, at)] and up
    return sorted((at, up) for (_, at), up in rounds.items())


def outages(series: Series, priority: str) -> list[Outage]:
    found: list[Outage] = []
    start: float | None = None
    points: list[Point] = [p for p in series.points if p.severity != "skipped"]
    for point in points:
        if point.severity == "critical" and start is None:
            start = point.at
        elif point.severity != "critical" and start is not None:
            found.append(Outage(series, start, point.at, priority))
            start = None
    if start is not None:
        found.append(Outage(series, start, None, priority))
    return found


def budget(
    rounds: Sequence[tuple[float, bool]], objective: float, until: float, period_s: float
) -> dict[str, Any]:
    share, count = availability(rounds, until - period_s, until)
    allowed = (1 - objective) * count
    down = sum(1 for at, up in rounds if not up and until - period_s <= at < until)
    burns = {}
    for name, length in BURN_WINDOWS:
        window, _ = availability(rounds, until - length, until)
        burns[name] = None if window is None else round((1 - window) / (1 - objective), 3)
    return {
        "availability": share,
        "rounds": count,
        "unavailable_rounds": down,
        "allowed_unavailable_rounds": round(allowed, 3),
        "budget_spent": round(down / allowed, 4) if allowed else None,
        "burn_rates": burns,
        "burning_fast": all((burns.get(w) or 0) >= rate for w, rate in FAST_BURN.items()),
    }


def uptime_report(inputs: Inputs) -> Report:
    until = inputs.period.until
    objective = inputs.objective
    rows, figures, per_series = [], [], []
    for series in inputs.series:
        rounds = series_rounds(series)
        if not rounds:
            continue
        shares = windows(rounds, inputs)
        rows.append((series.name, *(_share(*shares[name]) for name, _ in WINDOWS)))
        figures.append(
            share_bar(shares["30d"][0] or 0.0, objective=objective, label=f"{series.name}: 30 days")
        )
        per_series.append(
            {"check": series.check, "series": series.key, "location": series.location,
             **{name: _json_share(*shares[name]) for name, _ in WINDOWS}}
        )  # fmt: skip
    groups: dict[str, list[Series]] = defaultdict(list)
    for series in inputs.series:
        groups[inputs.component(series)].append(series)
    component_rows: list[tuple[str, ...]] = []
    components: list[dict[str, Any]] = []
    budgets: list[tuple[str, dict[str, Any]]] = []
    for name, members in sorted(groups.items()):
        rounds = grouped_rounds(members)
        shares = windows(rounds, inputs)
        component_rows.append((name, *(_share(*shares[w]) for w, _ in WINDOWS)))
        spent = budget(rounds, objective, until, inputs.period.length_s)
        budgets.append((name, spent))
        components.append(
            {"component": name, **{w: _json_share(*shares[w]) for w, _ in WINDOWS}, "budget": spent}
        )  # fmt: skip
    overall = budget(grouped_rounds(inputs.series), objective, until, inputs.period.length_s)
    found = sorted(
        (o for s in inputs.series for o in outages(s, inputs.priority(s))),
        key=lambda o: o.start,
    )
    incident_rows = [
        (
            o.series.name,
            o.priority,
            iso_utc(o.start),
            iso_utc(o.end) if o.end is not None else "ongoing",
            format_duration(o.duration(until)),
            "not recorded",
        )
        for o in found
    ]
    budget_rows = [
        ("whole environment", *_budget_cells(overall)),
        *((name, *_budget_cells(spent)) for name, spent in budgets),
    ]
    sections = [
        Section(
            "Error budget",
            [
                f"Objective {objective:.3%} of rounds available over the period; burn rate "
                "1 spends the budget exactly over it."
            ],
            Table(
                (
                    "scope",
                    "availability",
                    "budget spent",
                    "burn 1h",
                    "burn 6h",
                    "burn 1d",
                    "burn 3d",
                    "burning fast",
                ),
                budget_rows,
            ),
        ),
        Section("Components", table=Table(("component", "7d", "30d", "90d"), component_rows)),
        Section("Endpoints (checks)", table=Table(("check", "7d", "30d", "90d"), rows, figures)),
        Section(
            "Incidents (CRITICAL)",
            table=Table(
                ("check", "priority", "start", "end", "duration", "acknowledged"), incident_rows
            ),
            empty="No check was CRITICAL in the period.",
        ),
    ]
    data = {
        "objective": objective,
        "overall": overall,
        "components": components,
        "checks": per_series,
        "incidents": [
            {
                "check": o.series.check,
                "series": o.series.key,
                "location": o.series.location,
                "priority": o.priority,
                "start": iso_utc(o.start),
                "end": None if o.end is None else iso_utc(o.end),
                "duration_s": o.duration(until),
                "acknowledged_after_s": None,
            }
            for o in found
        ],
    }
    return Report(
        kind="uptime",
        title="Uptime and error budget",
        environment=inputs.environment,
        period="",
        coverage="",
        not_recorded=(
            "Time to acknowledge is not recorded: none of the receivers (PagerDuty, Slack, "
            "email, Alertmanager, webhook) reports an acknowledgement back to synthetic.",
            "Availability counts rounds, not time: a gap without rounds counts neither way.",
        ),
        sections=sections,
        data=data,
    )


def _share(share: float | None, count: int) -> str:
    return "-" if share is None else f"{share:.3%} ({count})"


def _json_share(share: float | None, count: int) -> dict[str, Any]:
    return {"availability": share, "rounds": count}


def _budget_cells(b: dict[str, Any]) -> tuple[str, ...]:
    burns = b["burn_rates"]
    return (
        "-" if b["availability"] is None else f"{b['availability']:.3%}",
        "-" if b["budget_spent"] is None else f"{b['budget_spent']:.0%}",
        *("-" if burns[w] is None else f"{burns[w]:g}" for w, _ in BURN_WINDOWS),
        "yes" if b["burning_fast"] else "no",
    )
