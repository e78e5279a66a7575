"""Everything a report computes from, gathered once: the history's series, the
catalogue's specs, the config's alert rules and what the alert store holds."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from synthetic.alerts.decide import receivers_for
from synthetic.alerts.settings import AlertSettings, Silence
from synthetic.alerts.store import OutboxEntry
from synthetic.reports.data import Coverage, Period, Series
from synthetic.reports.replay import Rules
from synthetic.spec import CheckSpec


@dataclass(frozen=True)
class WorkingHours:
    """Monday to Friday, ``start`` to ``end`` o'clock, in ``timezone``."""

    timezone: str = "UTC"
    start: int = 9
    end: int = 18

    def outside(self, at: float) -> bool:
        local = datetime.datetime.fromtimestamp(at, ZoneInfo(self.timezone))
        return local.weekday() >= 5 or not (self.start <= local.hour < self.end)

    def describe(self) -> str:
        return f"Mon-Fri {self.start:02d}:00-{self.end:02d}:00 {self.timezone}"


@dataclass(frozen=True)
class AlertStoreView:
    """What the alert store holds now (it keeps no history of its own)."""

    incidents: Mapping[str, Any] = field(default_factory=dict)
    silences: Sequence[Silence] = ()
    outbox: Sequence[OutboxEntry] = ()
    dead_letters: Sequence[OutboxEntry] = ()
    problem: str | None = None  # it could not be read: why


@dataclass(frozen=True)
class Inputs:
    environment: str
    period: Period
    coverage: Coverage
    series: Sequence[Series]
    specs: Mapping[str, CheckSpec]  # by check id
    alerts: AlertSettings = field(default_factory=AlertSettings)
    store: AlertStoreView = field(default_factory=AlertStoreView)
    hours: WorkingHours = field(default_factory=WorkingHours)
    objective: float = 0.999

    def spec(self, series: Series) -> CheckSpec | None:
        return self.specs.get(series.check)

    def attributes(self, series: Series, severity: str) -> dict[str, str | None]:
        spec = self.spec(series)
        return {
            "severity": severity,
            "component": spec.component if spec else None,
            "metric": series.metric,
            "environment": self.environment,
            "priority": spec.priority if spec else None,
            "check": series.check,
        }

    def sustain_s(self, series: Series) -> float:
        spec = self.spec(series)
        return self.alerts.sustain_for(series.metric, series.key, spec.sustain_s if spec else 0.0)

    def rules(self, series: Series, *, sustain_s: float | None = None) -> Rules:
        routed: dict[str, list[str]] = {}

        def receivers(severity: str) -> list[str]:
            # The same for every round of the series: the routes are matched once.
            if severity not in routed:
                routed[severity] = receivers_for(self.alerts, self.attributes(series, severity))
            return routed[severity]

        def remind_every(name: str) -> float | None:
            receiver = self.alerts.receivers.get(name)
            return None if receiver is None else receiver.remind_every_s

        return Rules(
            sustain_s=self.sustain_s(series) if sustain_s is None else sustain_s,
            resolve_after=self.alerts.resolve_after,
            flap_window_s=self.alerts.flap_window_s,
            flap_changes=self.alerts.flap_changes,
            receivers=receivers,
            remind_every=remind_every,
        )

    def component(self, series: Series) -> str:
        spec = self.spec(series)
        return (spec.component if spec else None) or "(no component)"

    def priority(self, series: Series) -> str:
        spec = self.spec(series)
        return spec.priority if spec else "P3"
