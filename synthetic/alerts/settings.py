"""The ``[alerts]`` table of the config: receivers, routes, silences, policy.

Validated by pydantic (``AlertsModel``) with the rest of the config, then
resolved into frozen values (`AlertSettings`) the decisions, routing and
delivery read. A receiver whose ``${VAR}`` is unset is kept, with the reason
in ``missing``: the checks still run, a dry run still shows what it would
send, and a real send keeps the alert in the outbox until the variable is set.

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

import datetime
import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthetic.errors import ConfigError
from synthetic.units import parse_duration

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Duration = str | float | int
Patterns = str | list[str]


def _duration_validator(value: Any) -> Any:
    if value is None:
        return value
    parse_duration(value)
    return value


class ReceiverModel(_Model):
    type: ReceiverType
    url: str | None = None
    routing_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    budget_s: float = Field(default=30.0, gt=0, le=600)
    remind_every: Duration | None = None
    ttl: Duration | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    email_from: str | None = Field(default=None, alias="from")
    email_to: list[str] = Field(default_factory=list, alias="to")

    _durations = field_validator("remind_every", "ttl")(_duration_validator)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


class RouteModel(_Model):
    receiver: str
    severity: Patterns | None = None
    component: Patterns | None = None
    metric: Patterns | None = None
    environment: Patterns | None = None
    priority: Patterns | None = None
    check: Patterns | None = None
    continue_: bool = Field(default=False, alias="continue")


class SilenceModel(_Model):
    until: datetime.datetime
    reason: str = ""
    created_by: str | None = None
    check: Patterns | None = None
    metric: Patterns | None = None
    component: Patterns | None = None
    environment: Patterns | None = None

    @model_validator(mode="after")
    def _has_matcher(self) -> SilenceModel:
        if not any(getattr(self, name) for name in ("check", "metric", "component", "environment")):
            raise ValueError(
                "a silence needs at least one of check, metric, component, environment"
            )
        return self


class AlertsModel(_Model):
    resolve_after: int = Field(default=2, ge=1, le=100)
    flap_window: Duration = "1h"
    flap_changes: int = Field(default=6, ge=2, le=1000)
    digest_every: Duration | None = "24h"
    record_for: Duration = "25s"
    heartbeat_url: str | None = None
    sustain: dict[str, Duration] = Field(default_factory=dict)
    receivers: dict[str, ReceiverModel] = Field(default_factory=dict)
    routes: list[RouteModel] = Field(default_factory=list)
    silences: list[SilenceModel] = Field(default_factory=list)

    _durations = field_validator("flap_window", "digest_every", "record_for")(_duration_validator)

    @field_validator("sustain")
    @classmethod
    def _sustain(cls, value: dict[str, Duration]) -> dict[str, Duration]:
        for pattern, duration in value.items():
            try:
                parse_duration(duration)
            except ValueError as exc:
                raise ValueError(f"{pattern}: {exc}") from None
        return value

    @field_validator("record_for")
    @classmethod
    def _record_for(cls, value: Duration) -> Duration:
        # It lengthens the lease: a runner that dies holds its entry that much longer.
        if parse_duration(value) > MAX_RECORD_FOR_S:
            raise ValueError(f"at most {MAX_RECORD_FOR_S:g}s (got {value!r})")
        return value

    @field_validator("heartbeat_url")
    @classmethod
    def _heartbeat(cls, value: str | None) -> str | None:
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> AlertsModel:
        for n, route in enumerate(self.routes):
            if route.receiver not in self.receivers:
                known = ", ".join(sorted(self.receivers)) or "none"
                raise ValueError(
                    f"routes.{n}.receiver: '{route.receiver}' is not a receiver (defined: {known})"
                )
        return self


def _patterns(value: Patterns | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


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


def resolve_alerts(
    model: AlertsModel | None, *, missing: Mapping[tuple[str, ...], str]
) -> AlertSettings:
    """`AlertSettings` from the validated table.

    ``missing`` maps a key path inside ``alerts`` (``("receivers", "x",
    "routing_key")``) to the environment variable that was unset there.
    """
    if model is None:
        model = AlertsModel()
    receivers = {name: _receiver(name, r, missing=missing) for name, r in model.receivers.items()}
    if model.routes:
        routes = tuple(_route(r) for r in model.routes)
    else:
        routes = tuple(
            Route(receiver=name, matchers={"severity": (severity,)})
            for severity, name in GUIDE_ROUTES
            if name in receivers
        )
    notes = []
    if ("heartbeat_url",) in missing:
        notes.append(
            f"alerts.heartbeat_url: environment variable {missing[('heartbeat_url',)]} "
            "is not set: no heartbeat"
        )
    return AlertSettings(
        resolve_after=model.resolve_after,
        flap_window_s=parse_duration(model.flap_window),
        flap_changes=model.flap_changes,
        digest_every_s=None if model.digest_every is None else parse_duration(model.digest_every),
        record_for_s=parse_duration(model.record_for),
        heartbeat_url=model.heartbeat_url or None,
        sustain={k: parse_duration(v) for k, v in model.sustain.items()},
        receivers=receivers,
        routes=routes,
        silences=tuple(
            Silence(
                id=f"config-{n}",
                until=s.until.timestamp()
                if s.until.tzinfo
                else s.until.replace(tzinfo=datetime.UTC).timestamp(),
                reason=s.reason,
                created_by=s.created_by or "config",
                matchers=_matchers(s, ("check", "metric", "component", "environment")),
            )
            for n, s in enumerate(model.silences)
        ),
        notes=tuple(notes),
    )


def _matchers(model: BaseModel, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    return {name: _patterns(getattr(model, name)) for name in names if getattr(model, name)}


def _route(model: RouteModel) -> Route:
    return Route(
        receiver=model.receiver,
        matchers=_matchers(model, MATCH_FIELDS),
        continue_=model.continue_,
    )


_REQUIRED: dict[str, tuple[str, ...]] = {
    "pagerduty": ("routing_key",),
    "slack": ("url",),
    "alertmanager": ("url",),
    "webhook": ("url",),
    "email": ("smtp_host", "email_from", "email_to"),
    "custom": (),
}
_ALIASES = {"email_from": "from", "email_to": "to"}


def _receiver(
    name: str, model: ReceiverModel, *, missing: Mapping[tuple[str, ...], str]
) -> Receiver:
    reasons = []
    for key in _REQUIRED[model.type]:
        if getattr(model, key):
            continue
        shown = _ALIASES.get(key, key)
        var = missing.get(("receivers", name, shown))
        if var is not None:
            reasons.append(f"environment variable {var} (for {shown}) is not set")
        else:
            reasons.append(f"{shown} is not set")
    for path, var in missing.items():
        if (
            path[:2] == ("receivers", name)
            and len(path) > 2
            and path[2] not in _REQUIRED[model.type]
        ):
            shown = ".".join(path[2:])
            if not any(f"(for {shown})" in r for r in reasons):
                reasons.append(f"environment variable {var} (for {shown}) is not set")
    url = model.url or (PAGERDUTY_EVENTS_URL if model.type == "pagerduty" else None)
    ttl = parse_duration(model.ttl) if model.ttl is not None else None
    if model.type == "alertmanager" and ttl is None:
        ttl = 900.0  # endsAt = now + 15 min, refreshed every run while firing
    remind = parse_duration(model.remind_every) if model.remind_every is not None else None
    if model.type == "alertmanager" and remind is None:
        remind = 0.0  # Alertmanager forgets an alert that is not re-sent: refresh every run
    return Receiver(
        name=name,
        type=model.type,
        url=url,
        routing_key=model.routing_key,
        headers=dict(model.headers),
        timeout_s=model.timeout_s,
        budget_s=model.budget_s,
        remind_every_s=remind,
        ttl_s=ttl,
        smtp_host=model.smtp_host,
        smtp_port=model.smtp_port,
        smtp_tls=model.smtp_tls,
        smtp_username=model.smtp_username,
        smtp_password=model.smtp_password,
        email_from=model.email_from,
        email_to=tuple(model.email_to),
        missing=tuple(reasons),
    )


def check_receiver_name(settings: AlertSettings, name: str) -> Receiver:
    try:
        return settings.receivers[name]
    except KeyError:
        known = ", ".join(sorted(settings.receivers)) or "none"
        raise ConfigError(f"alerts: no receiver named '{name}' (defined: {known})") from None
