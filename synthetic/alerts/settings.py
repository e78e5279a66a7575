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
import math
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
class Quorum:
    """How many locations must agree on a breach: a count, or a share of those reporting."""

    count: int = 1
    percent: float | None = None  # of the locations that reported within the window

    def required(self, reporting: int) -> int:
        if self.percent is None:
            return self.count
        return max(1, math.ceil(reporting * self.percent / 100 - 1e-9))

    @property
    def text(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)

    @classmethod
    def parse(cls, value: int | str) -> Quorum:
        """``2`` or ``"50%"``; ValueError saying what is wrong otherwise."""
        if isinstance(value, bool):
            raise ValueError(f'expected a count (2) or a share ("50%"), got {value!r}')
        if isinstance(value, int):
            if value < 1:
                raise ValueError(f"a quorum is at least 1 location (got {value})")
            return cls(count=value)
        text = str(value).strip()
        try:
            if text.endswith("%"):
                percent = float(text[:-1])
                if not 0 < percent <= 100:
                    raise ValueError
                return cls(percent=percent)
            return cls.parse(int(text))
        except ValueError:
            raise ValueError(
                f'expected a count (2) or a share of the reporting locations ("50%"), got {value!r}'
            ) from None


def _by_pattern(
    table: Mapping[str, Any], metric: str, check_key: str, component: str | None
) -> Any:
    """The entry for a check: its key, its metric, a glob on the metric, its component."""
    for name in (check_key, metric):
        if name in table:
            return table[name]
    for pattern, value in table.items():
        if fnmatch.fnmatchcase(metric, pattern):
            return value
    for pattern, value in table.items():
        if component is not None and fnmatch.fnmatchcase(component, pattern):
            return value
    return None


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
    # Several locations (synthetic.alerts.quorum): how often each runs, how
    # many must agree, for how long a result counts, what proves a runner's
    # own network (target-independent URLs).
    every_s: float = 300.0
    quorum: Mapping[str, Quorum] = field(default_factory=dict)
    quorum_window: Mapping[str, float] = field(default_factory=dict)
    quorum_window_s: float | None = None  # for every check; default twice every_s
    location_probe: tuple[str, ...] = ()

    def sustain_for(self, metric: str, check_key: str, declared_s: float = 0.0) -> float:
        """The sustain window of a check: the config's (exact key, then glob) or the marker's."""
        for name in (check_key, metric):
            if name in self.sustain:
                return self.sustain[name]
        for pattern, seconds in self.sustain.items():
            if fnmatch.fnmatchcase(metric, pattern):
                return seconds
        return declared_s

    def quorum_for(self, metric: str, check_key: str, component: str | None) -> Quorum:
        found = _by_pattern(self.quorum, metric, check_key, component)
        return found if isinstance(found, Quorum) else Quorum()

    @property
    def window_s(self) -> float:
        """How long a location's result counts, unless a check says otherwise;
        a location that has not reported for longer is silent."""
        return self.quorum_window_s if self.quorum_window_s is not None else 2 * self.every_s

    def window_for(self, metric: str, check_key: str, component: str | None) -> float:
        found = _by_pattern(self.quorum_window, metric, check_key, component)
        return float(found) if found is not None else self.window_s


def check_receiver_name(settings: AlertSettings, name: str) -> Receiver:
    try:
        return settings.receivers[name]
    except KeyError:
        known = ", ".join(sorted(settings.receivers)) or "none"
        raise ConfigError(f"alerts: no receiver named '{name}' (defined: {known})") from None
