"""The status page and a check's page, rendered from data they are given (no I/O).

Jinja2 with autoescaping; every value goes through the masker on its way
into the page (the template's ``finalize``), and the finished page once
more, so a secret in a reason, a label or evidence is never shown. The
stylesheet is inline and allowed by its hash (`STYLE_HASH`) in the
Content-Security-Policy; the page has no script.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from synthetic.history.model import Row
from synthetic.redact import Masker
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.serve.sparkline import Point, sparkline, threshold_levels
from synthetic.serve.view import Snapshot
from synthetic.text import iso_utc
from synthetic.units import format_duration, format_value

CSS = resources.files("synthetic.serve").joinpath("templates/page.css").read_text("utf-8")
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
WINDOW_S = 24 * 3600.0
ORDER = ("critical", "unknown", "warning", "ok", "skipped")
STATE = {
    "ok": ("OK", "All checks passing"),
    "warning": ("DEGRADED", "Degraded: some checks are warning"),
    "critical": ("CRITICAL", "Critical: checks are failing"),
    "down": ("DOWN", "Down: the portal does not answer"),
    "unknown": ("UNKNOWN", "Unknown: some checks could not measure"),
}


@dataclass(frozen=True)
class CheckRow:
    id: str
    href: str
    name: str
    severity: str
    reason: str
    value: str
    thresholds: str
    since: str
    svg: Markup
    component: str
    runbook: str | None
    priority: str | None


class Pages:
    """Renders pages with one masker (the config's)."""

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("synthetic.serve", "templates"),
            autoescape=True,
            finalize=self._finalize,
            undefined=jinja2.StrictUndefined,
        )

    def _finalize(self, value: Any) -> Any:
        if isinstance(value, Markup):
            return value  # made here (the SVGs, the stylesheet) from masked parts
        if isinstance(value, str):
            return self.masker.text(value)
        return value

    def index(
        self, snapshot: Snapshot, series: Mapping[str, Sequence[Point]], *, now: float
    ) -> str:
        run = snapshot.run
        state = portal_state(run)
        rows = [self._row(c, snapshot, series.get(c.id, ()), now=now) for c in _ordered(run)]
        components: dict[str, list[CheckRow]] = {}
        for row in rows:
            components.setdefault(row.component, []).append(row)
        grouped = [
            {"name": name, "severity": _worst([r.severity for r in members]), "checks": members}
            for name, members in components.items()
        ]
        grouped.sort(key=lambda g: (-_rank(str(g["severity"])), str(g["name"])))
        word, headline = STATE.get(state, STATE["unknown"])
        if run is None:
            word, headline = "STARTING", "Waiting for the first round"
        return self._render(
            "index.html",
            snapshot=snapshot,
            run=run,
            state=state,
            state_word=word,
            headline=headline,
            counts=run.counts() if run else {},
            incidents=snapshot.incidents,
            silences=snapshot.silences,
            where=snapshot.locations,
            components=grouped,
            title=f"{word} · {snapshot.environment} · synthetic",
            now=now,
        )

    def check(
        self, snapshot: Snapshot, check: CheckResult, history: Sequence[Row], *, now: float
    ) -> str:
        points = [Point(r.at, r.value, r.severity) for r in history]
        row = self._row(check, snapshot, points, now=now, width=240)
        svg = _spark(check, points, now=now, width=720, height=140)
        evidence = None
        if check.evidence is not None:
            evidence = json.dumps(self.masker.data(check.evidence), indent=2, ensure_ascii=False)
        shown = [
            {
                "time": iso_utc(r.at).replace("T", " ").removesuffix("Z"),
                "severity": r.severity,
                "value": _value_text(r.to_json()["value"], r.unit),
                "reason": r.reason,
            }
            for r in reversed(history[-200:])
        ]
        return self._render(
            "check.html",
            snapshot=snapshot,
            state=check.severity.value,
            state_word=check.severity.value.upper(),
            row=row,
            svg=svg,
            evidence=evidence,
            history=shown,
            window_text="24 hours"
            if not points or now - points[0].at > WINDOW_S / 2
            else f"{_ago(points[0].at, now).replace(' ago', '')}",
            title=f"{check.severity.value.upper()} · {row.name} · synthetic",
            now=now,
        )

    def _render(self, name: str, **context: Any) -> str:
        snapshot: Snapshot = context["snapshot"]
        now: float = context.pop("now")
        page = self.env.get_template(name).render(
            css=Markup(CSS),
            refresh_s=_refresh_s(snapshot),
            ago=lambda at: _ago(at, now),
            clock=_clock,
            **context,
        )
        return self.masker.text(page)

    def _row(
        self,
        check: CheckResult,
        snapshot: Snapshot,
        points: Sequence[Point],
        *,
        now: float,
        width: int = 240,
    ) -> CheckRow:
        since = snapshot.since.get(check.id)
        thresholds = ", ".join(
            f"{name} {text}"
            for name, text in (("warning", check.warning), ("critical", check.critical))
            if text
        )
        return CheckRow(
            id=check.id,
            href="/checks/" + quote(check.id, safe=""),
            name=check.key,
            severity=check.severity.value,
            reason=check.reason,
            value=_value_text(check.value, check.unit),
            thresholds=thresholds or "no thresholds",
            since=(
                f"{_clock(since)} ({_ago(since, now)})"
                if since
                else f"before {_clock(snapshot.started)}"
            ),
            svg=_spark(check, points, now=now, width=width, height=48),
            component=check.component or "other",
            runbook=check.runbook,
            priority=check.priority,
        )


def portal_state(run: RunResult | None) -> str:
    """ok, warning (degraded), critical, down or unknown: down when the portal's BFF
    itself did not answer a check, whatever else failed."""
    if run is None:
        return "unknown"
    down = any(c.severity is Severity.CRITICAL and c.unreachable == "bff" for c in run.checks)
    return "down" if down else run.worst.value


def _spark(
    check: CheckResult, points: Sequence[Point], *, now: float, width: int, height: int
) -> Markup:
    # The last 24 hours, or less when there is less to show (a runner just started).
    start = now - WINDOW_S
    if points:
        start = max(start, min(points[0].at, now - 60.0) - 1.0)
    svg = sparkline(
        points,
        start=start,
        end=now,
        warning=threshold_levels(check.warning, check.unit),
        critical=threshold_levels(check.critical, check.unit),
        width=width,
        height=height,
        label=f"{check.key} since {_clock(start)}",
    )
    return Markup(svg)


def _ordered(run: Any) -> list[CheckResult]:
    return list(run.worst_first()) if run is not None else []


def _rank(severity: str) -> int:
    return Severity(severity).rank if severity in {s.value for s in Severity} else 2


def _worst(severities: Sequence[str]) -> str:
    return max(severities, key=_rank) if severities else "unknown"


def _value_text(value: Any, unit: str | None) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return repr(value) if isinstance(value, str) else json.dumps(value)[:120]
    return format_value(value, unit)


def _refresh_s(snapshot: Snapshot) -> int:
    return int(min(max(snapshot.every_s, 5.0), 60.0))


def _clock(at: float | None) -> str:
    if at is None:
        return "-"
    return iso_utc(at).replace("T", " ").replace("Z", " UTC")


def _ago(at: float | None, now: float) -> str:
    if at is None:
        return "-"
    return f"{format_duration(now - at)} ago"


def now_s() -> float:
    return time.time()
