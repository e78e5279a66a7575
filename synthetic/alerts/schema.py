"""The ``[alerts]`` table's schema (pydantic) and its resolution into
`synthetic.alerts.settings.AlertSettings`."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthetic.alerts.settings import (
    GUIDE_ROUTES,
    MATCH_FIELDS,
    MAX_RECORD_FOR_S,
    PAGERDUTY_EVENTS_URL,
    AlertSettings,
    Quorum,
    Receiver,
    ReceiverType,
    Route,
    Silence,
)
from synthetic.units import parse_duration

_REQUIRED: dict[str, tuple[str, ...]] = {
    "pagerduty": ("routing_key",),
    "slack": ("url",),
    "alertmanager": ("url",),
    "webhook": ("url",),
    "email": ("smtp_host", "email_from", "email_to"),
    "custom": (),
}

_ALIASES = {"email_from": "from", "email_to": "to"}


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
    """Where alerts go: a service and how to reach it."""

    type: ReceiverType = Field(
        description="pagerduty (Events API v2), slack (incoming webhook), alertmanager, "
        "email (SMTP), webhook (a JSON document), or custom (a plugin's send hook)."
    )
    url: str | None = Field(
        default=None,
        description="The webhook or Alertmanager URL; PagerDuty's Events API by default.",
    )
    routing_key: str | None = Field(
        default=None, description="PagerDuty's integration key; masked everywhere."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Headers of each HTTP delivery."
    )
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Seconds one attempt may take, from connecting to the end of the answer.",
    )
    budget_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Seconds a whole delivery may take, retries and waits included (a hard "
        "deadline).",
    )
    remind_every: Duration | None = Field(
        default=None,
        description='Remind while an incident stands, e.g. "4h"; Alertmanager: every run.',
    )
    ttl: Duration | None = Field(
        default=None, description="Alertmanager: endsAt = now + ttl, refreshed each run (15m)."
    )
    smtp_host: str | None = Field(default=None, description="Email: the SMTP server.")
    smtp_port: int = Field(default=587, gt=0, lt=65536, description="Email: its port.")
    smtp_tls: Literal["starttls", "ssl", "none"] = Field(
        default="starttls", description="Email: STARTTLS, TLS from the start, or none."
    )
    smtp_username: str | None = Field(default=None, description="Email: the SMTP login.")
    smtp_password: str | None = Field(
        default=None, description="Email: the SMTP password; masked everywhere."
    )
    email_from: str | None = Field(default=None, alias="from", description="Email: the sender.")
    email_to: list[str] = Field(
        default_factory=list, alias="to", description="Email: the recipients."
    )

    _durations = field_validator("remind_every", "ttl")(_duration_validator)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return value


class RouteModel(_Model):
    """Which alerts go to a receiver: every matcher given must match (globs); the first
    route that matches wins, unless it says continue."""

    receiver: str = Field(description="A receiver's name.")
    severity: Patterns | None = Field(
        default=None,
        description="critical, warning or info (recoveries, the digest); a glob or a list.",
    )
    component: Patterns | None = Field(default=None, description="The check's component.")
    metric: Patterns | None = Field(default=None, description='The metric, e.g. "bullmq.*".')
    environment: Patterns | None = Field(default=None, description="The environment.")
    priority: Patterns | None = Field(default=None, description="P1 to P4.")
    check: Patterns | None = Field(
        default=None, description='The check key, e.g. bullmq.waiting{queue="email"}.'
    )
    continue_: bool = Field(
        default=False, alias="continue", description="Go on to the next routes after a match."
    )


class SilenceModel(_Model):
    """Alerts held back until a time (resolves still go out); at least one matcher."""

    until: datetime.datetime = Field(
        description="When it ends: a TOML date-time (UTC when it has no offset)."
    )
    reason: str = Field(default="", description="Why, shown with the silence.")
    created_by: str | None = Field(default=None, description="Who; shown with the silence.")
    check: Patterns | None = Field(default=None, description="Check keys (globs).")
    metric: Patterns | None = Field(default=None, description="Metrics (globs).")
    component: Patterns | None = Field(default=None, description="Components (globs).")
    environment: Patterns | None = Field(default=None, description="Environments (globs).")

    @model_validator(mode="after")
    def _has_matcher(self) -> SilenceModel:
        if not any(getattr(self, name) for name in ("check", "metric", "component", "environment")):
            raise ValueError(
                "a silence needs at least one of check, metric, component, environment"
            )
        return self


class AlertsModel(_Model):
    """How results become alerts: policy, receivers, routes, silences."""

    resolve_after: int = Field(
        default=2, ge=1, le=100, description="OK runs in a row before an incident resolves."
    )
    flap_window: Duration = Field(
        default="1h", description="The window in which state changes are counted."
    )
    flap_changes: int = Field(
        default=6, ge=2, le=1000, description="State changes within flap_window that mean flapping."
    )
    digest_every: Duration | None = Field(
        default="24h", description="How often an info digest lists the standing warnings."
    )
    record_for: Duration = Field(
        default="25s",
        description="How long a runner keeps trying to record a receiver's answer while the "
        "store is away (at most 10m).",
    )
    heartbeat_url: str | None = Field(
        default=None,
        description="GET at the end of each run with --alerts send: a dead man's switch.",
    )
    sustain: dict[str, Duration] = Field(
        default_factory=dict,
        description="How long a breach must last before anyone is told, by metric or glob: "
        '{ "bullmq.*" = "5m" }; wins over the marker\'s sustain.',
    )
    every: Duration = Field(
        default="5m",
        description="How often each location runs the checks (its schedule); the quorum "
        "window is twice this unless quorum_window says otherwise.",
    )
    quorum: dict[str, int | str] = Field(
        default_factory=dict,
        description="How many locations must see a breach before it counts, by check key, "
        'metric (glob) or component: { "health.*" = 2, "bff" = "50%" } (a share of the '
        "locations that reported within the window); 1 otherwise.",
    )
    quorum_window: Duration | dict[str, Duration] | None = Field(
        default=None,
        description="How long a location's latest result counts in a quorum, for every "
        'check ("10m") or by check key, metric (glob) or component; twice `every` by '
        "default. A location with no report for longer than it is silent.",
    )
    location_probe: Patterns | None = Field(
        default=None,
        description="URLs that do not depend on the targets (a public endpoint, the CI "
        "provider's): a runner that reaches none of them is unhealthy, says so on the info "
        "route and is left out of quorums.",
    )
    receivers: dict[str, ReceiverModel] = Field(
        default_factory=dict, description="The receivers by name."
    )
    routes: list[RouteModel] = Field(
        default_factory=list,
        description="The routes in order; none: critical to pagerduty-oncall, warning to "
        "slack-ops, info to email-team, those defined.",
    )
    silences: list[SilenceModel] = Field(
        default_factory=list, description="Silences kept in the config."
    )

    _durations = field_validator("flap_window", "digest_every", "record_for", "every")(
        _duration_validator
    )

    @field_validator("every")
    @classmethod
    def _every(cls, value: Duration) -> Duration:
        if parse_duration(value) <= 0:
            raise ValueError(f"must be longer than 0s (got {value!r})")
        return value

    @field_validator("quorum")
    @classmethod
    def _quorum(cls, value: dict[str, int | str]) -> dict[str, int | str]:
        for pattern, quorum in value.items():
            try:
                Quorum.parse(quorum)
            except ValueError as exc:
                raise ValueError(f"{pattern}: {exc}") from None
        return value

    @field_validator("quorum_window")
    @classmethod
    def _quorum_window(
        cls, value: Duration | dict[str, Duration] | None
    ) -> Duration | dict[str, Duration] | None:
        for pattern, duration in (value if isinstance(value, dict) else {"": value}).items():
            try:
                if duration is not None and parse_duration(duration) <= 0:
                    raise ValueError("must be longer than 0s")
            except ValueError as exc:
                raise ValueError(f"{pattern}: {exc}" if pattern else str(exc)) from None
        return value

    @field_validator("location_probe")
    @classmethod
    def _probe(cls, value: Patterns | None) -> Patterns | None:
        for url in _patterns(value):
            if not url.lower().startswith(("http://", "https://")):
                raise ValueError(f"{url[:80]!r}: expected an http:// or https:// URL")
        return value

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
        every_s=parse_duration(model.every),
        quorum={k: Quorum.parse(v) for k, v in model.quorum.items()},
        quorum_window={k: parse_duration(v) for k, v in model.quorum_window.items()}
        if isinstance(model.quorum_window, dict)
        else {},
        quorum_window_s=None
        if model.quorum_window is None or isinstance(model.quorum_window, dict)
        else parse_duration(model.quorum_window),
        location_probe=_patterns(model.location_probe),
    )


def _matchers(model: BaseModel, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    return {name: _patterns(getattr(model, name)) for name in names if getattr(model, name)}


def _route(model: RouteModel) -> Route:
    return Route(
        receiver=model.receiver,
        matchers=_matchers(model, MATCH_FIELDS),
        continue_=model.continue_,
    )


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
