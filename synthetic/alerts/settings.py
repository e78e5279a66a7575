"""The ``[alerts]`` table of the config: receivers, routes, silences, policy.

Validated by pydantic (`synthetic.alerts.schema`) with the rest of the config,
then resolved into these frozen values (`AlertSettings`) the decisions, routing
and delivery read; this module needs no pydantic, so the decisions stay pure.
A receiver whose ``${VAR}`` is unset is kept, with the reason in ``missing``:
the checks still run, a dry run still shows what it would send, and a real send
keeps the alert in the outbox until the variable is set.

Example::

    [alerts]
    resolve_after = 2                      # OK runs before a resolve is sent
    sustain = { "health.status" = "2m", "bullmq.*" = "5m" }

    [alerts.receivers.pagerduty-oncall]
    type = "pagerduty"
    routing_key = "${PAGERDUTY_ROUTING_KEY}"

    [[alerts.routes]]
    receiver = "pagerduty-oncall"
    severity = "critical"
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from synthetic.errors import ConfigError

# "custom": delivered by a plugin's `pytest_synthetic_alert_send` hook.
ReceiverType = Literal["pagerduty", "slack", "alertmanager", "email", "webhook", "custom"]


PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"


MAX_RECORD_FOR_S = 600.0


MATCH_FIELDS = ("severity", "component", "metric", "environment", "priority", "check")


# The guide's routing: critical pages on-call, warning goes to chat, info
# (recoveries, the digest of standing warnings) goes to the team's mail.
GUIDE_ROUTES = (
    ("critical", "pagerduty-oncall"),
    ("warning", "slack-ops"),
    ("info", "email-team"),
)


def matches(patterns: tuple[str, ...], value: str | None) -> bool:
    """No patterns match anything; otherwise ``value`` must match one glob."""
    if not patterns:
        return True
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclass(frozen=True)
class Receiver:
    """Where alerts go, with secrets resolved (mask before printing)."""

    name: str
    type: ReceiverType
    url: str | None = None
    routing_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0
    budget_s: float = 30.0
    remind_every_s: float | None = None
    ttl_s: float | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_tls: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    email_from: str | None = None
    email_to: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # why it cannot send, one phrase each

    @property
    def ready(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class Route:
    receiver: str
    matchers: Mapping[str, tuple[str, ...]]
    continue_: bool = False

    def matches(self, attributes: Mapping[str, str | None]) -> bool:
        return all(matches(p, attributes.get(name)) for name, p in self.matchers.items())


@dataclass(frozen=True)
class Silence:
    until: float  # epoch seconds
    matchers: Mapping[str, tuple[str, ...]]
    reason: str = ""
    created_by: str | None = None
    id: str = ""

    def covers(self, attributes: Mapping[str, str | None], now: float) -> bool:
        if now >= self.until:
            return False
        return all(matches(p, attributes.get(name)) for name, p in self.matchers.items() if p)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "until": self.until,
            "reason": self.reason,
            "created_by": self.created_by,
            "matchers": {k: list(v) for k, v in self.matchers.items() if v},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Silence:
        return cls(
            id=str(data.get("id", "")),
            until=float(data["until"]),
            reason=str(data.get("reason", "")),
            created_by=data.get("created_by"),
            matchers={k: tuple(v) for k, v in dict(data.get("matchers", {})).items()},
        )


@dataclass(frozen=True)
class AlertSettings:
    """The resolved ``[alerts]`` table."""

    resolve_after: int = 2
    flap_window_s: float = 3600.0
    flap_changes: int = 6
    digest_every_s: float | None = 86400.0
    # After a receiver's answer, how long a runner keeps trying to record it
    # while the store is away (a restart, a failover) before giving up.
    record_for_s: float = 25.0
    heartbeat_url: str | None = None
    sustain: Mapping[str, float] = field(default_factory=dict)
    receivers: Mapping[str, Receiver] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    silences: tuple[Silence, ...] = ()
    notes: tuple[str, ...] = ()  # e.g. a heartbeat URL whose variable is unset

    def sustain_for(self, metric: str, check_key: str, declared_s: float = 0.0) -> float:
        """The sustain window of a check: the config's (exact key, then glob) or the marker's."""
        for name in (check_key, metric):
            if name in self.sustain:
                return self.sustain[name]
        for pattern, seconds in self.sustain.items():
            if fnmatch.fnmatchcase(metric, pattern):
                return seconds
        return declared_s


def check_receiver_name(settings: AlertSettings, name: str) -> Receiver:
    try:
        return settings.receivers[name]
    except KeyError:
        known = ", ".join(sorted(settings.receivers)) or "none"
        raise ConfigError(f"alerts: no receiver named '{name}' (defined: {known})") from None
