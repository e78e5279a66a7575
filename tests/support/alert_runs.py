"""The alert decisions run after run, carrying the state document as the store
does, with the guide's routing: for the decision tests and the log backends'."""

from __future__ import annotations

from typing import Any

from synthetic.alerts.decide import Context, Decision, decide
from synthetic.alerts.settings import AlertSettings, Receiver, Route
from synthetic.results import CheckResult, Severity

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z
ENV = "production"


def guide_settings(**overrides: Any) -> AlertSettings:
    receivers = {
        "pagerduty-oncall": Receiver("pagerduty-oncall", "pagerduty", routing_key="k" * 32),
        "slack-ops": Receiver("slack-ops", "slack", url="http://127.0.0.1:1/hook"),
        "email-team": Receiver("email-team", "email", smtp_host="127.0.0.1"),
    }
    receivers.update(overrides.pop("receivers", {}))
    routes = tuple(
        Route(receiver=name, matchers={"severity": (severity,)})
        for severity, name in (
            ("critical", "pagerduty-oncall"),
            ("warning", "slack-ops"),
            ("info", "email-team"),
        )
    )
    values: dict[str, Any] = {
        "receivers": receivers,
        "routes": routes,
        "digest_every_s": None,
    }
    values.update(overrides)
    return AlertSettings(**values)


class Runs:
    """Runs one after another, carrying the state document like the store does."""

    def __init__(self, settings: AlertSettings | None = None) -> None:
        self.settings = settings or guide_settings()
        self.document: dict[str, Any] = {"incidents": {}, "silences": [], "meta": {}}
        self.n = 0

    def run(self, at: float, *checks: CheckResult) -> Decision:
        self.n += 1
        context = Context(environment=ENV, run_id=f"run-{self.n}", now=at, target=None)
        decision = decide(list(checks), self.document, self.settings, context)
        self.document = decision.document
        return decision


def check(
    metric: str = "health.status",
    severity: Severity = Severity.CRITICAL,
    *,
    reason: str | None = None,
    sustain_s: float = 0.0,
    reaches: tuple[str, ...] = ("bff",),
    depends_on: tuple[str, ...] | None = None,
    unreachable: str | None = None,
    priority: str = "P1",
    labels: dict[str, str] | None = None,
) -> CheckResult:
    return CheckResult(
        id=f"checks/check_x.py::check_{metric.replace('.', '_')}",
        metric=metric,
        severity=severity,
        reason=reason or f"{metric}: {severity.value}",
        value=1,
        component="bff",
        priority=priority,
        runbook="https://runbooks.example/incident-response",
        labels=labels or {},
        sustain_s=sustain_s,
        reaches=reaches,
        depends_on=reaches if depends_on is None else depends_on,
        unreachable=unreachable,
    )


def sent(decision: Decision) -> list[tuple[str, str, str, str]]:
    return [(n.receiver, n.alert.kind, n.alert.action, n.alert.severity) for n in decision.notices]
