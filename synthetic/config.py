"""The config file: environments, thresholds overrides, runbooks, ``${VAR}``.

Read from ``synthetic.toml`` or ``[tool.synthetic]`` in ``pyproject.toml``
(found from the invocation directory upwards), or from the file named by
``--config`` / ``SYNTHETIC_CONFIG``. Every error is one line naming the file
and the dotted key; no secret value is ever part of a message.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from synthetic.alerts.schema import AlertsModel, Duration, resolve_alerts
from synthetic.alerts.settings import AlertSettings, Receiver
from synthetic.errors import SHOWN_CHARS, ConfigError, NotConfigured, excerpt
from synthetic.generate.settings import GenerateModel
from synthetic.limits import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_SERIES
from synthetic.logs.settings import LogsSettings
from synthetic.options import find_config_file, parse_toml
from synthetic.redact import Masker, is_sensitive_key
from synthetic.serve.settings import ServeModel, ServeSettings, resolve_serve
from synthetic.units import parse_duration

ModelT = TypeVar("ModelT", bound=BaseModel)

SANDBOX = "sandbox"
SANDBOX_URL_VAR = "SYNTHETIC_SANDBOX_URL"
SANDBOX_DEFAULT_PORT = 4000
DEFAULT_ENVIRONMENT = SANDBOX
# The monitoring guide's entries of GET /health and GET /auth/health-check.

# Keys whose value is a URL or DSN: only their password is a secret.
_URL_KEYS = frozenset(
    {"base_url", "metrics_url", "redis_url", "postgres_dsn", "state", "url", "history"}
)
_PLACEHOLDER = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ThresholdOverride(_Model):
    """``warning``/``critical`` for one metric; ``false`` removes that level."""

    warning: str | bool | None = Field(
        default=None,
        description='The warning threshold in force in this environment, e.g. "> 20"; '
        "false removes the level; unset keeps the check's own.",
    )
    critical: str | bool | None = Field(
        default=None,
        description="The critical threshold in force in this environment; false removes "
        "the level; unset keeps the check's own.",
    )

    @field_validator("warning", "critical", mode="before")
    @classmethod
    def _expression_or_false(cls, value: Any) -> Any:
        if value is None or value is False or isinstance(value, str):
            return value
        raise ValueError(
            'expected a threshold expression in quotes, like "> 50", or false to remove it'
        )


_DATADOG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,199}$")


class ExportersModel(_Model):
    """Where a run's results go as metrics; each is off unless set."""

    prometheus_textfile: str | None = Field(
        default=None,
        description="A .prom file for node_exporter's textfile collector (relative to the "
        "config file), rewritten atomically each run.",
    )
    pushgateway_url: str | None = Field(
        default=None, description="A Prometheus Pushgateway to push each run's metrics to."
    )
    pushgateway_job: str = Field(
        default="synthetic", description="The Pushgateway job; grouped by environment."
    )
    cloudwatch_namespace: str | None = Field(
        default=None,
        description="A CloudWatch namespace for PutMetricData, e.g. CustomerPortal; "
        "credentials from boto3's usual chain.",
    )
    cloudwatch_region: str | None = Field(default=None, description="CloudWatch's AWS region.")
    cloudwatch_endpoint_url: str | None = Field(
        default=None, description="Another CloudWatch endpoint: a VPC endpoint, or a stand-in."
    )
    dogstatsd: str | None = Field(
        default=None, description="host:port of a DogStatsD agent, e.g. 127.0.0.1:8125."
    )
    dogstatsd_tags: list[str] = Field(
        default_factory=list, description="Tags added to every DogStatsD gauge."
    )
    cloudwatch_names: dict[str, str] = Field(
        default_factory=dict,
        description="CloudWatch metric names by metric id, e.g. whmcs.queue_size = "
        "WhmcsQueueDepth; an id not named here is sent in CamelCase (db.size: DbSize).",
    )
    dogstatsd_prefix: str = Field(
        default="",
        description="Put before each DogStatsD gauge name that dogstatsd_names does not "
        "give, and before synthetic.severity, e.g. portal.",
    )
    dogstatsd_names: dict[str, str] = Field(
        default_factory=dict,
        description="DogStatsD gauge names by metric id, whole (no prefix added), e.g. "
        "whmcs.queue_size = portal.whmcs.queue_depth.",
    )
    timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="Seconds each exporter may take to send."
    )

    @field_validator("pushgateway_url", "cloudwatch_endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _check_scheme(value, ("http://", "https://"), "an http:// or https:// URL")

    @field_validator("dogstatsd_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not _DATADOG_NAME.match(value):
            raise ValueError(
                f"expected letters, digits, _ and . like 'portal.' (got {value[:40]!r})"
            )
        return value

    @field_validator("dogstatsd_names", "cloudwatch_names")
    @classmethod
    def _names(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for metric, name in value.items():
            datadog = info.field_name == "dogstatsd_names"
            if datadog and not _DATADOG_NAME.match(name):
                raise ValueError(
                    f"{metric}: a DataDog metric name starts with a letter and has letters, "
                    f"digits, _ and . (at most 200; got {name[:40]!r})"
                )
            printable = name.isascii() and name.isprintable()
            if not datadog and not (printable and 1 <= len(name) <= 255):
                raise ValueError(f"{metric}: a CloudWatch metric name is 1-255 ASCII characters")
        return value

    @field_validator("dogstatsd")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value and not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+:\d{1,5}", value):
            raise ValueError("expected host:port, e.g. 127.0.0.1:8125")
        return value


class EnvironmentModel(_Model):
    """One environment the checks run against (``--env NAME``): where its systems are,
    the bounds on them, and its own thresholds."""

    base_url: str | None = Field(
        default=None,
        description="The BFF's http(s):// URL (the bff fixture); unset: checks that need it "
        "are skipped.",
    )
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds per request: connect, headers and body together (also Redis and "
        "PostgreSQL timeouts). A timeout is not retried.",
    )
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of a request after a connection error (refused, reset) or a "
        "502, 503 or 504.",
    )
    retry_budget_s: float = Field(
        default=10.0, ge=0, le=600, description="Seconds all the retries of a request may take."
    )
    check_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="A check's time limit, unless its timeout marker or --timeout says "
        "otherwise: stopped then, CRITICAL unreachable if it was waiting on its target, "
        "else UNKNOWN.",
    )
    run_timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="The whole run's deadline; unset: the synthetic command computes one from "
        "the checks' limits (plain pytest has none).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers sent to the target's origin only (base_url's, else "
        "metrics_url's); values from ${VAR} and credential-like names are masked.",
    )
    follow_redirects: Literal["same-origin", "never"] = Field(
        default="same-origin",
        description="Follow redirects within the request's origin (at most 5), or never; "
        "any other redirect is CRITICAL and not followed.",
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        le=1024**3,
        description="A response body's largest size, decompressed; a larger one is CRITICAL "
        "response too large.",
    )
    max_series: int = Field(
        default=DEFAULT_MAX_SERIES,
        ge=1,
        le=10_000_000,
        description="Series metrics_url's text may have, counted before it is parsed.",
    )
    redis_url: str | None = Field(
        default=None,
        description="redis://, rediss:// or unix:// URL of the portal's Redis; unset or "
        "empty: the Redis and BullMQ checks are skipped.",
    )
    postgres_dsn: str | None = Field(
        default=None,
        description="postgresql:// URL or libpq key=value DSN (a pg_monitor role is enough); "
        "unset or empty: the database checks are skipped.",
    )
    metrics_url: str | None = Field(
        default=None,
        description="A Prometheus text endpoint (the BFF's /metrics); works without base_url.",
    )
    log_files: list[str] = Field(
        default_factory=list,
        description="Pino log files read incrementally by the log checks (relative to the "
        "config file; an empty string is unset).",
    )
    logs: LogsSettings = Field(
        default_factory=LogsSettings,
        description="How log lines map to requests and calls, and where they are read.",
    )
    state: str | None = Field(
        default=None,
        description="This environment's state store, instead of the top-level state: a file "
        "path or a redis:// URL.",
    )
    runbook_base_url: str | None = Field(
        default=None, description="Overrides [runbooks] base_url in this environment."
    )
    evictions_critical_per_min: float | None = Field(
        default=None,
        ge=0,
        description='Shorthand for thresholds."redis.evictions".critical = "> N/min".',
    )
    thresholds: dict[str, ThresholdOverride] = Field(
        default_factory=dict,
        description='Threshold overrides by metric ("whmcs.queue_size") or by metric and '
        "labels ('bullmq.waiting{queue=\"email\"}'); the labels' override wins.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The catalogue's own settings (the framework does not read them): "
        "environment.params, synthetic_env.require(name); over the top-level params.",
    )
    exporters: ExportersModel = Field(
        default_factory=ExportersModel, description="Where the run's results go as metrics."
    )

    @field_validator("base_url", "metrics_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _check_scheme(value, ("http://", "https://"), "an http:// or https:// URL")

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return _check_scheme(
            value, ("redis://", "rediss://", "unix://"), "a redis://, rediss:// or unix:// URL"
        )

    @field_validator("postgres_dsn")
    @classmethod
    def _postgres_dsn(cls, value: str | None) -> str | None:
        if value and "=" in value and "://" not in value:
            return value  # a libpq key=value DSN
        return _check_scheme(
            value, ("postgresql://", "postgres://"), "a postgresql:// URL or a key=value DSN"
        )

    @field_validator("state")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        return _state_spec(value)


def _check_scheme(value: str | None, schemes: tuple[str, ...], wanted: str) -> str | None:
    # Empty means unset (``${VAR:-}``). The value is never echoed: it may hold a secret.
    if value and not value.lower().startswith(schemes):
        scheme = _printable(value.split("://", 1)[0] + "://") if "://" in value else "no scheme"
        raise ValueError(f"expected {wanted} (got {scheme})")
    return value


def _state_spec(value: str | None) -> str | None:
    if value and "://" in value and not value.startswith(("redis://", "rediss://", "unix://")):
        scheme = _printable(value.split("://", 1)[0] + "://")
        raise ValueError(f"expected a file path or a redis:// URL (got {scheme})")
    return value


class RunbooksModel(_Model):
    """How a check's runbook name (``runbook="queue-management"``) becomes a URL."""

    base_url: str | None = Field(default=None, description="A runbook name becomes base_url/name.")
    links: dict[str, str] = Field(
        default_factory=dict, description="Runbook names with URLs of their own; they win."
    )


class ConfigModel(_Model):
    """``synthetic.toml``, or ``[tool.synthetic]`` in ``pyproject.toml``."""

    default_environment: str | None = Field(
        default=None,
        description="The environment used without --env or SYNTHETIC_ENV; unset: sandbox.",
    )
    checks: list[str] = Field(
        default_factory=lambda: ["checks"],
        description="Where the synthetic command collects checks, relative to the config file.",
    )
    state: str | None = Field(
        default=None,
        description="The state store between runs: a file path or a redis:// URL; unset: "
        "<results dir>/state-<environment>.json.",
    )
    runbooks: RunbooksModel = Field(
        default_factory=RunbooksModel, description="Runbook names to URLs."
    )
    environments: dict[str, EnvironmentModel] = Field(
        default_factory=dict,
        description="The environments by name; a sandbox one exists unless defined here.",
    )
    alerts: AlertsModel = Field(
        default_factory=AlertsModel, description="Receivers, routes, silences, policy."
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="The catalogue's own settings for every environment; an environment's "
        "params override them key by key.",
    )
    exporters: ExportersModel = Field(
        default_factory=ExportersModel,
        description="Exporter settings for every environment (the names the catalogue's "
        "metrics have elsewhere); an environment's exporters override them key by key.",
    )
    logs: LogsSettings = Field(
        default_factory=LogsSettings,
        description="Log settings for every environment (the dependencies, the preset); an "
        "environment's logs override them key by key.",
    )
    history: str | None = Field(
        default=None,
        description="Where every round's results are kept: a file path (SQLite) or a "
        "postgresql:// URL; serve uses <results dir>/history.sqlite when unset.",
    )
    history_retention: Duration = Field(
        default="30d", description="How long the history keeps a result ('30d')."
    )
    serve: ServeModel = Field(
        default_factory=ServeModel, description="The long-lived runner (synthetic serve)."
    )
    generate: GenerateModel = Field(
        default_factory=GenerateModel,
        description="How synthetic generate names the catalogue's alarms, monitors and "
        "dashboards (a guide's names); unset, after the checks.",
    )

    @field_validator("state")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        return _state_spec(value)

    @field_validator("history")
    @classmethod
    def _history(cls, value: str | None) -> str | None:
        if value and "://" in value and not value.startswith(("postgresql://", "postgres://")):
            scheme = _printable(value.split("://", 1)[0] + "://")
            raise ValueError(f"expected a file path or a postgresql:// URL (got {scheme})")
        return value

    @field_validator("history_retention")
    @classmethod
    def _retention(cls, value: Duration) -> Duration:
        if parse_duration(value, where="history_retention") <= 0:
            raise ValueError("must be more than 0 s")
        return value


@dataclass(frozen=True)
class Environment:
    """One named environment, with ``${VAR}`` resolved."""

    name: str
    base_url: str | None = None
    timeout_s: float = 10.0
    retries: int = 2
    retry_budget_s: float = 10.0
    check_timeout_s: float = 60.0
    run_timeout_s: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    follow_redirects: str = "same-origin"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_series: int = DEFAULT_MAX_SERIES
    redis_url: str | None = None
    postgres_dsn: str | None = None
    metrics_url: str | None = None
    log_files: tuple[str, ...] = ()
    logs: LogsSettings = field(default_factory=LogsSettings)
    state: str | None = None
    thresholds: Mapping[str, ThresholdOverride] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    own_params: frozenset[str] = frozenset()  # the params set by the environment itself
    exporters: ExportersModel = field(default_factory=ExportersModel)

    def __repr__(self) -> str:
        # Shown in tracebacks with --showlocals: no header value, no URL password.
        masker = Masker()
        return (
            f"Environment(name={self.name!r}, base_url={masker.text(self.base_url or '')!r}, "
            f"timeout_s={self.timeout_s}, headers=[{', '.join(self.headers)}])"
        )

    def require(self, key: str) -> Any:
        """The value of ``key``; a `NotConfigured` naming it when it is unset."""
        value = getattr(self, key) if hasattr(self, key) else self.params.get(key)
        if value in (None, "", (), [], {}):
            raise NotConfigured(key, self.name)
        return value


@dataclass(frozen=True)
class Runbooks:
    base_url: str | None = None
    links: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, runbook: str | None) -> str | None:
        """A runbook name (``queue-management``) or URL as a URL.

        A URL is kept; a name is looked up in ``links``, else joined to
        ``base_url``; without either the name is kept as given.
        """
        if not runbook:
            return None
        if re.match(r"^[a-z][a-z0-9+.-]*://", runbook, re.IGNORECASE):
            return runbook
        if runbook in self.links:
            return self.links[runbook]
        if self.base_url:
            return self.base_url.rstrip("/") + "/" + quote(runbook)
        return runbook


@dataclass(frozen=True)
class Config:
    """The loaded config, with the selected environment."""

    path: Path | None
    environment: Environment
    environments: tuple[str, ...]
    checks: tuple[Path, ...]
    state: str | None
    runbooks: Runbooks
    masker: Masker
    alerts: AlertSettings = field(default_factory=AlertSettings)
    history: str | None = None  # None: not configured (serve uses <results dir>/history.db)
    history_retention_s: float = 30 * 86400.0
    serve: ServeSettings = field(default_factory=ServeSettings)
    generate: GenerateModel = field(default_factory=GenerateModel)

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "built-in defaults"


def load_config(
    *,
    path: str | os.PathLike[str] | None = None,
    environment: str | None = None,
    search_from: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate the config and select an environment.

    ``path`` (from ``--config`` or ``SYNTHETIC_CONFIG``) must exist; otherwise
    the nearest config file from ``search_from`` is used, and without one the
    built-in defaults (a single ``sandbox`` environment).
    """
    env = os.environ if environ is None else environ
    config_path = locate_config(path, search_from=search_from)
    raw = _read(config_path) if config_path else {}
    where = str(config_path) if config_path else "<defaults>"
    default = raw.get("default_environment")
    name = environment or (default if isinstance(default, str) else None) or DEFAULT_ENVIRONMENT
    masker = Masker()
    missing: dict[tuple[str, ...], str] = {}
    resolved = _interpolate(
        raw,
        where=where,
        prefix=_prefix(config_path),
        environ=env,
        masker=masker,
        key_path=(),
        selected=name,
        missing=missing,
    )
    try:
        model = ConfigModel.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(
            f"{where}: {describe_validation(exc, prefix=_prefix(config_path))}"
        ) from None

    environments = dict(model.environments)
    if SANDBOX not in environments:
        sandbox_url = env.get(SANDBOX_URL_VAR) or f"http://127.0.0.1:{SANDBOX_DEFAULT_PORT}"
        environments[SANDBOX] = EnvironmentModel(base_url=sandbox_url, timeout_s=5.0)

    if name not in environments:
        known = ", ".join(_printable(known) for known in sorted(environments)[:20])
        raise ConfigError(f"{where}: environment {excerpt(name)} is not defined (defined: {known})")

    base = config_path.parent if config_path else (search_from or Path.cwd()).resolve()
    try:
        chosen = _with_defaults(environments[name], model)
    except ValidationError as exc:
        prefix = f"{_prefix(config_path)}environments.{name}."
        raise ConfigError(f"{where}: {describe_validation(exc, prefix=prefix)}") from None
    masker.add(*header_secrets(chosen.headers))
    for url in (
        chosen.base_url,
        chosen.redis_url,
        chosen.postgres_dsn,
        chosen.metrics_url,
        chosen.exporters.pushgateway_url,
        chosen.exporters.cloudwatch_endpoint_url,
    ):
        masker.add_url(url)

    _add_log_backend_secrets(masker, chosen.logs)
    state = chosen.state or model.state
    masker.add_url(state)
    alerts = resolve_alerts(model.alerts, missing=missing)
    for receiver in alerts.receivers.values():
        _add_receiver_secrets(masker, receiver)
    masker.add_url(alerts.heartbeat_url)
    if state and "://" not in state:
        state = str(base / state)
    history = model.history or None
    masker.add_url(history)
    if history and "://" not in history:
        history = str(base / history)
    serve = resolve_serve(model.serve)
    masker.add(*serve.secrets)
    return Config(
        path=config_path,
        environment=_environment(
            chosen,
            name=name,
            log_files=tuple(str(base / f) for f in chosen.log_files if f),  # '' is unset
            exporters=_exporters(chosen.exporters, base),
            state=state,
            thresholds=_thresholds(chosen),
            params={**model.params, **chosen.params},
            own_params=frozenset(chosen.params),
        ),
        environments=tuple(sorted(environments)),
        checks=_check_paths(base, model.checks),
        state=state,
        runbooks=Runbooks(
            base_url=chosen.runbook_base_url or model.runbooks.base_url,
            links=dict(model.runbooks.links),
        ),
        masker=masker,
        alerts=alerts,
        history=history,
        history_retention_s=parse_duration(model.history_retention, where="history_retention"),
        serve=serve,
        generate=model.generate,
    )


def _with_defaults(chosen: EnvironmentModel, model: ConfigModel) -> EnvironmentModel:
    """The environment's exporters and logs over the top-level tables, key by key
    (a key the environment sets replaces the top-level one whole)."""
    merged: dict[str, Any] = {}
    for key, kind in (("exporters", ExportersModel), ("logs", LogsSettings)):
        top: BaseModel = getattr(model, key)
        own: BaseModel = getattr(chosen, key)
        if top.model_fields_set:
            merged[key] = kind.model_validate(
                {**top.model_dump(exclude_unset=True), **own.model_dump(exclude_unset=True)}
            )
    return chosen.model_copy(update=merged) if merged else chosen


def locate_config(
    path: str | os.PathLike[str] | None, *, search_from: Path | None = None
) -> Path | None:
    """The file `load_config` reads: ``path`` (which must exist), else the nearest
    config file from ``search_from`` (the working directory), else None."""
    if path is None:
        return find_config_file((search_from or Path.cwd()).resolve())
    config_path = Path(path).expanduser().resolve()
    if not config_path.is_file():
        raise ConfigError(f"{path}: config file not found")
    return config_path


def configured_checks(
    config_path: Path | None,
    *,
    search_from: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path, ...]:
    """The config's `checks` as `load_config` gives them, read before an
    environment is chosen (the ``synthetic`` command points pytest at them)."""
    raw = _read(config_path) if config_path else {}
    where = str(config_path) if config_path else "<defaults>"
    checks = _interpolate(
        {"checks": raw["checks"]} if "checks" in raw else {},
        where=where,
        prefix=_prefix(config_path),
        environ=os.environ if environ is None else environ,
        masker=Masker(),
        key_path=(),
        selected=DEFAULT_ENVIRONMENT,
    )
    try:
        model = ConfigModel.model_validate(checks)
    except ValidationError as exc:
        raise ConfigError(
            f"{where}: {describe_validation(exc, prefix=_prefix(config_path))}"
        ) from None
    base = config_path.parent if config_path else (search_from or Path.cwd()).resolve()
    return _check_paths(base, model.checks)


def _check_paths(base: Path, checks: list[str]) -> tuple[Path, ...]:
    """Relative to the config file; ``..`` folded, symbolic links kept (as pytest
    keeps them in its paths)."""
    return tuple(Path(os.path.normpath(base / c)) for c in checks)


def _add_log_backend_secrets(masker: Masker, logs: LogsSettings) -> None:
    """A log backend's password and token (even written in the file), and the
    credentials of its URLs."""
    for backend in (logs.loki, logs.prometheus):
        if backend is not None:
            masker.add(*(s for s in (backend.password, backend.bearer) if s))
            masker.add_url(backend.url)
    if logs.cloudwatch is not None:
        masker.add_url(logs.cloudwatch.endpoint_url)


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """The values of ``headers`` to mask: those whose name says credential
    (``Authorization``, ``Cookie``, ``X-Api-Key``, ``*-Token``, ``*-Secret``...),
    even when written in the file. A value from ``${VAR}`` is masked whatever its
    name (`_interpolate`); a literal ``X-Env = "staging"`` is not a secret, and
    masking it would hide the word ``staging`` in every line of output."""
    return [value for name, value in headers.items() if is_sensitive_key(name)]


def _add_receiver_secrets(masker: Masker, receiver: Receiver) -> None:
    """What to mask of a receiver: its key, password, headers, the credentials
    of its URL, and the path and query of a Slack or webhook URL (a Slack
    webhook's path is its token)."""
    masker.add(*(s for s in (receiver.routing_key, receiver.smtp_password) if s))
    masker.add(*header_secrets(receiver.headers))
    if receiver.url and receiver.type != "pagerduty":
        masker.add_url(receiver.url)
        try:
            parts = urlsplit(receiver.url)
        except ValueError:
            masker.add(receiver.url)
            return
        tail = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
        if receiver.type in ("slack", "webhook") and tail:
            masker.add(tail)


def _environment(model: EnvironmentModel, **resolved: Any) -> Environment:
    """The `Environment` of a validated model: every field copied (lists as
    tuples, tables as dicts), except those ``resolved`` here (paths made
    absolute, shorthands folded in)."""
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(Environment):
        if spec.name in resolved:
            values[spec.name] = resolved[spec.name]
            continue
        value = getattr(model, spec.name)
        values[spec.name] = (
            tuple(value) if isinstance(value, list) else dict(value) if isinstance(value, dict)
            else value
        )  # fmt: skip
    return Environment(**values)


def _exporters(exporters: ExportersModel, base: Path) -> ExportersModel:
    """Paths in the config are relative to the config file, as log files are."""
    if exporters.prometheus_textfile and not Path(exporters.prometheus_textfile).is_absolute():
        textfile = str(base / exporters.prometheus_textfile)
        return exporters.model_copy(update={"prometheus_textfile": textfile})
    return exporters


def _thresholds(environment: EnvironmentModel) -> dict[str, ThresholdOverride]:
    """The environment's overrides, with the shorthand keys folded in.

    ``evictions_critical_per_min = 500`` means ``thresholds."redis.evictions".critical
    = "> 500/min"``; an explicit override of that level wins.
    """
    thresholds = dict(environment.thresholds)
    per_min = environment.evictions_critical_per_min
    if per_min is not None:
        current = thresholds.get("redis.evictions", ThresholdOverride())
        if current.critical is None:
            thresholds["redis.evictions"] = current.model_copy(
                update={"critical": f"> {per_min:g}/min"}
            )
    return thresholds


# Deeper than any config needs; shallow enough for every recursive step after.
MAX_DEPTH = 64


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    prefix = ""
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        section = tool.get("synthetic") if isinstance(tool, dict) else None
        if section is None:
            raise ConfigError(f"{path}: has no [tool.synthetic] table")
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: tool.synthetic must be a table")
        data, prefix = section, "tool.synthetic."
    too_deep = _too_deep(data)
    if too_deep is not None:
        key = _shown_key(prefix + ".".join(_printable(part) for part in too_deep))
        raise ConfigError(f"{path}: {key}: nested deeper than {MAX_DEPTH} levels")
    return data


def _too_deep(data: dict[str, Any]) -> tuple[str, ...] | None:
    """The key path of the first value nested deeper than `MAX_DEPTH`, or None.

    Walked without recursion: dotted keys and table headers nest without the
    parser recursing, and every later step (interpolation, validation) does."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((item, (*path, str(key))) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, (*path, str(n))) for n, item in enumerate(value))
    return None


def _prefix(path: Path | None) -> str:
    return "tool.synthetic." if path is not None and path.name == "pyproject.toml" else ""


def validate_params(config: Config, model: type[ModelT]) -> ModelT:
    """The catalogue's own settings: the selected environment's ``params`` (over
    the top-level ``[params]``) validated by its ``model`` (a pydantic model the
    checks define); a `ConfigError` naming the file and the key where it is
    written (``environments.production.params.p95_paths: ...`` or
    ``params.p95_paths: ...``) when one is wrong."""
    environment = config.environment
    try:
        return model.model_validate(dict(environment.params))
    except ValidationError as exc:
        own = f"environments.{_printable(environment.name)}.params."

        def prefix(loc: tuple[Any, ...]) -> str:
            written = own if not loc or loc[0] in environment.own_params else "params."
            return _prefix(config.path) + written

        raise ConfigError(f"{config.source}: {describe_validation(exc, prefix=prefix)}") from None


def describe_validation(
    exc: ValidationError, *, prefix: str | Callable[[tuple[Any, ...]], str]
) -> str:
    """A pydantic error as one line per problem (at most five), each naming its
    key; ``prefix`` is where the keys are, or says so for each error's location."""
    problems = []
    for error in exc.errors():
        start = prefix(tuple(error["loc"])) if callable(prefix) else prefix
        key = start + ".".join(_printable(str(part)) for part in error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden" and error["loc"][-1] in MOVED_TO_PARAMS:
            moved = _printable(str(error["loc"][-1]))
            message = f"moved to params.{moved}: a setting of the catalogue, not of the framework"
        elif kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "value_error":
            message = str(error["ctx"]["error"]) if "ctx" in error else error["msg"]
        else:
            message = error["msg"][0].lower() + error["msg"][1:]
            if kind not in {"string_type", "dict_type", "list_type"}:
                message += f" (got {_shape(error.get('input'))})"
        # A backstop: validators quote with `excerpt`, but no message runs on.
        problems.append(f"{key}: {message[:MAX_MESSAGE]}")
    return "; ".join(problems[:MAX_PROBLEMS]) + (
        f"; and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
    )


MAX_MESSAGE = 300
MAX_PROBLEMS = 5
# The Customer Portal catalogue's settings that were environment keys before
# they moved to its own table (`params`, read by checks/settings.py): named
# when an old config still has them at the environment's level.
MOVED_TO_PARAMS = frozenset(
    {
        "bullmq_queues",
        "bullmq_prefix",
        "health_checks",
        "integrations",
        "health_entries",
        "connections_metric",
        "connection_capacity",
        "database_disk_bytes",
        "dead_tuples_min_rows",
        "p95_sample_size",
        "p95_paths",
    }
)


def _shape(value: Any) -> str:
    # Name the type, not the value: the value might be a secret.
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    return type(value).__name__


def _interpolate(
    value: Any,
    *,
    where: str,
    prefix: str,
    environ: Mapping[str, str],
    masker: Masker,
    key_path: tuple[str, ...],
    selected: str,
    missing: dict[tuple[str, ...], str] | None = None,
) -> Any:
    """Replace ``${VAR}``, ``${VAR:-default}`` and ``$$`` in every string.

    Only the selected environment (and the top level) needs its variables
    set: production's token is not required to check the sandbox, and values
    from other environments never reach the masker or the output.
    """
    if isinstance(value, dict | list):
        items = value.items() if isinstance(value, dict) else enumerate(value)
        done = {
            k: _interpolate(
                v,
                where=where,
                prefix=prefix,
                environ=environ,
                masker=masker,
                key_path=(*key_path, str(k)),
                selected=selected,
                missing=missing,
            )
            for k, v in items
        }
        # A value of another environment whose variable is unset is left out,
        # so its default applies: checking the sandbox needs no production
        # variable, not even for a number.
        kept = {k: v for k, v in done.items() if v is not UNRESOLVED}
        return kept if isinstance(value, dict) else list(kept.values())
    if not isinstance(value, str) or "$" not in value:
        return value

    other_environment = len(key_path) > 1 and key_path[0] == "environments"
    other_environment = other_environment and key_path[1] != selected
    url_like = bool(key_path) and key_path[-1] in _URL_KEYS
    secrets: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name")
        default = match.group("default")
        # As in the shell: ${VAR:-default} takes the default when VAR is unset or empty.
        if name in environ and not (default is not None and environ[name] == ""):
            secrets.append(environ[name])
            return environ[name]
        if default is not None:
            return default
        if other_environment:
            raise _Unresolved
        if missing is not None and _lenient(key_path):
            # A receiver's secret may be unset where alerts are not sent (a
            # laptop, the sandbox): the receiver says so when asked to send.
            missing[key_path[1:]] = name
            raise _Unresolved
        key = prefix + ".".join(_printable(part) for part in key_path)
        raise ConfigError(f"{where}: {key}: environment variable {_printable(name)} is not set")

    leftover = _PLACEHOLDER.sub("", value)
    if "$" in leftover:
        key = prefix + ".".join(_printable(part) for part in key_path)
        raise ConfigError(
            f"{where}: {key}: a '$' that is not ${{NAME}} or ${{NAME:-default}}; "
            "write $$ for a literal $"
        )
    try:
        result = _PLACEHOLDER.sub(substitute, value)
    except _Unresolved:
        return UNRESOLVED
    if other_environment:
        return result
    masker.add_url(result)
    # In a URL, a variable holding a URL (the address, or its start) is not a
    # secret, only its password is; a variable filling a path or query part
    # (a tenant key, a function code) is.
    masker.add(*(secret for secret in secrets if not (url_like and "://" in secret)))
    return result


def _lenient(key_path: tuple[str, ...]) -> bool:
    return key_path[:2] == ("alerts", "receivers") or key_path == ("alerts", "heartbeat_url")


class _Unresolved(Exception):
    """A placeholder of another environment whose variable is unset."""


UNRESOLVED: Any = object()


def _printable(key: str) -> str:
    # Keys are shown in one-line messages: no raw control characters, and
    # cut (a hostile file may hold a key of megabytes).
    if key.isprintable() and len(key) <= SHOWN_CHARS:
        return key
    return excerpt(key)


def _shown_key(key: str) -> str:
    """A dotted key for a message, cut to `SHOWN_CHARS` characters."""
    return key if len(key) <= SHOWN_CHARS else key[: SHOWN_CHARS - 3] + "..."
