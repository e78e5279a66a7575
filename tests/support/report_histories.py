"""A day of history with known properties, for the report tests.

One round a minute for a day (1440 rounds), five checks:

- ``noisy`` (app.error_rate, bff, critical > 5, warning > 2, sustain 0): twelve
  2-round CRITICAL spikes, one 20-round CRITICAL incident, and one incident of
  5 WARNING rounds then 15 CRITICAL (an escalation);
- ``flappy`` (cache.hit_rate, cache): two stretches of 20 rounds alternating
  WARNING and OK, ten hours apart;
- ``loose`` (whmcs.queue_size, queues, critical > 1000, warning > 500): values
  ``(i * 7) % 121``, never above 120;
- ``tight`` (app.response_time_p95, bff, warning > 200 ms): values
  ``150 + ((i + 2) % 10) * 30``, above 200 in 8 rounds of 10 (each decade of
  rounds: 8 WARNING, then 2 OK);
- ``outage`` (health.status, bff, P1): CRITICAL for 43 rounds, from round 1200.

Every property is also kept here as plain data (which rounds are critical,
the spikes' starts), so the tests compute their expectations from the
construction, not from the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from synthetic.history import HistoryStore, Row, RunRow, rows_of
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.spec import CheckSpec
from synthetic.text import iso_utc
from synthetic.thresholds import parse_threshold

T0 = 1_793_577_600.0  # 2026-11-02T00:00:00Z, a Monday
ROUNDS = 1440
STEP = 60.0
ENV = "production"

NOISY = "checks/check_app.py::check_error_rate"
FLAPPY = "checks/check_cache.py::check_hit_rate"
LOOSE = "checks/check_queues.py::check_queue_size"
TIGHT = "checks/check_app.py::check_latency"
OUTAGE = "checks/check_health.py::check_health_status"

SPIKES = [60 + 50 * n for n in range(12)]  # 2 rounds each: 60..61, 110..111, ... 610..611
REAL = range(700, 720)  # 20 rounds CRITICAL
ESCALATING_WARN = range(800, 805)  # 5 rounds WARNING ...
ESCALATING_CRIT = range(805, 820)  # ... then 15 CRITICAL
FLAPS = [range(300, 320), range(900, 920)]  # odd offsets WARNING, even OK
OUTAGE_ROUNDS = range(1200, 1243)  # 43 rounds


def at(i: int) -> float:
    """When round ``i`` finished."""
    return T0 + STEP * (i + 1)


def spec(check: str, metric: str, component: str, *, unit: str | None = None,
         warning: str | None = None, critical: str | None = None, priority: str = "P2",
         runbook: str | None = None) -> CheckSpec:  # fmt: skip
    return CheckSpec(
        node_id=check,
        metric=metric,
        unit=unit,
        component=component,
        runbook=runbook,
        priority=priority,
        warning=parse_threshold(warning, unit=unit) if warning else None,
        critical=parse_threshold(critical, unit=unit) if critical else None,
    )


SPECS = {
    s.node_id: s
    for s in (
        spec(NOISY, "app.error_rate", "bff", unit="%", warning="> 2", critical="> 5"),
        spec(FLAPPY, "cache.hit_rate", "cache", unit="%", warning="< 80"),
        spec(
            LOOSE, "whmcs.queue_size", "queues", unit="requests", warning="> 500", critical="> 1000"
        ),
        spec(TIGHT, "app.response_time_p95", "bff", unit="ms", warning="> 200"),
        spec(OUTAGE, "health.status", "bff", critical="!= 'healthy'", priority="P1"),
    )
}


@dataclass
class Truth:
    """What the generated history holds, per check: severity and value per round."""

    severities: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)

    def rounds(self, check: str, severity: str) -> set[int]:
        return {i for i, s in enumerate(self.severities[check]) if s == severity}


def truth() -> Truth:
    t = Truth()
    noisy_sev, noisy_val = [], []
    crit = {i for s in SPIKES for i in (s, s + 1)} | set(REAL) | set(ESCALATING_CRIT)
    for i in range(ROUNDS):
        if i in crit:
            noisy_sev.append("critical")
            noisy_val.append(8.0)
        elif i in ESCALATING_WARN:
            noisy_sev.append("warning")
            noisy_val.append(3.0)
        else:
            noisy_sev.append("ok")
            noisy_val.append(1.0)
    t.severities[NOISY], t.values[NOISY] = noisy_sev, noisy_val
    flappy = ["ok"] * ROUNDS
    for stretch in FLAPS:
        for i in stretch:
            flappy[i] = "warning" if (i - stretch.start) % 2 == 0 else "ok"
    t.severities[FLAPPY] = flappy
    t.values[FLAPPY] = [70.0 if s == "warning" else 95.0 for s in flappy]
    loose = [float((i * 7) % 121) for i in range(ROUNDS)]
    t.values[LOOSE], t.severities[LOOSE] = loose, ["ok"] * ROUNDS
    tight = [150.0 + ((i + 2) % 10) * 30 for i in range(ROUNDS)]
    t.values[TIGHT] = tight
    t.severities[TIGHT] = ["warning" if v > 200 else "ok" for v in tight]
    t.severities[OUTAGE] = ["critical" if i in OUTAGE_ROUNDS else "ok" for i in range(ROUNDS)]
    t.values[OUTAGE] = ["down" if i in OUTAGE_ROUNDS else "healthy" for i in range(ROUNDS)]
    return t


def run_of(i: int, t: Truth) -> RunResult:
    checks = []
    for check, s in SPECS.items():
        severity = t.severities[check][i]
        value = t.values[check][i]
        checks.append(
            CheckResult(
                id=check,
                metric=s.metric,
                severity=Severity(severity),
                reason=f"{s.metric} = {value}",
                value=value,
                unit=s.unit,
                component=s.component,
                priority=s.priority,
                duration_ms=5.0,
            )
        )
    return RunResult(
        run_id=f"r{i:05d}",
        environment=ENV,
        target=None,
        started_at=iso_utc(at(i) - 1, timespec="milliseconds"),
        finished_at=iso_utc(at(i), timespec="milliseconds"),
        checks=tuple(checks),
    )


def write_history(store: HistoryStore, t: Truth, *, shift: float = 0.0) -> None:
    """The day's rounds into ``store`` (``shift`` seconds later than `T0`)."""
    for i in range(ROUNDS):
        run, rows = rows_of(run_of(i, t))
        store.append(_shifted_run(run, shift), [_shifted_row(r, shift) for r in rows])


def _shifted_run(run: RunRow, shift: float) -> RunRow:
    return replace(run, started_at=run.started_at + shift, finished_at=run.finished_at + shift)


def _shifted_row(row: Row, shift: float) -> Row:
    return replace(row, at=row.at + shift)


# The guide's three receivers, their secrets from unset variables (never sent).
RECEIVERS = """
[alerts.receivers.pagerduty-oncall]
type = "pagerduty"
routing_key = "${REPORT_TEST_PD_KEY:-}"

[alerts.receivers.slack-ops]
type = "slack"
url = "${REPORT_TEST_SLACK_URL:-}"

[alerts.receivers.email-team]
type = "email"
smtp_host = "127.0.0.1"
from = "synthetic@example.com"
to = ["team@example.com"]
"""
