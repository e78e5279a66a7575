"""The ``logs`` table of an environment: how to read the portal's log lines.

A line is one of two kinds, each with its own fields:

- a **request** line records an incoming HTTP request the BFF answered
  (status, duration, path, method);
- a **call** line records an outgoing call to a dependency (WHMCS,
  Salesforce, Freebit...), recognised by its name in the message or in a
  field (a NestJS ``context`` such as ``WhmcsService``).

Every field is a path into the line: ``res.statusCode`` is the key
``statusCode`` of the object under ``res``; a key that contains a dot is
written with a backslash, ``labels\\.app``. A preset (``pino-http``,
``nestjs-pino``, ``fastify``, ``guide``) names the fields of a stack; the
keys of the table override it. Without a preset the shape is detected from
the lines (`synthetic.logs.shapes`)::

    [environments.production.logs]
    preset = "nestjs-pino"
    requests = { duration = "responseTime" }
    calls = { duration = "elapsedMs" }

    [environments.production.logs.dependencies]
    whmcs = { aliases = ["WhmcsClient"] }
    salesforce = {}
    freebit = { response_time_p95 = { warning = "> 3s", critical = "> 10s" } }
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from synthetic.logs.sources.settings import (
    CloudWatchSettings,
    LokiSettings,
    PrometheusSettings,
    Source,
)

PRESETS = ("guide", "pino-http", "nestjs-pino", "fastify")
Preset = Literal["guide", "pino-http", "nestjs-pino", "fastify"]
LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "warning": 40, "error": 50, "fatal": 60}
DEFAULT_REDACT_FIELDS = (
    "email",
    "name",
    "firstName",
    "lastName",
    "phone",
    "address",
    "ip",
    "remoteAddress",
    "userId",
    "customerId",
    "cookie",
    "headers",
)
# The flat keys of earlier versions, and where they went.
_MOVED = {
    "duration_field": "requests.duration and calls.duration",
    "status_field": "requests.status and calls.status",
    "path_field": "requests.path",
    "method_field": "requests.method",
    "correlation_field": "correlation_fields",
    "dependency_field": "calls.dependency_field",
    "dependency_pattern": "calls.dependency_pattern",
}
MAX_PATH_PARTS = 8


def split_path(path: str) -> tuple[str, ...]:
    """``res.statusCode`` -> ``("res", "statusCode")``; ``a\\.b`` is the one key ``a.b``."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in path:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return tuple(parts)


def _field_path(value: str) -> str:
    parts = split_path(value)
    if any(not part for part in parts):
        raise ValueError(
            "expected a field path like 'res.statusCode' (an empty part; "
            "write a dot inside a key as '\\.')"
        )
    if len(parts) > MAX_PATH_PARTS:
        raise ValueError(f"a field path has at most {MAX_PATH_PARTS} parts")
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


FieldPath = Annotated[str, AfterValidator(_field_path)]
Regex = Annotated[str, AfterValidator(_regex)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Model):
    """A line is of a kind when ``field`` is present (and its text matches ``pattern``)."""

    field: FieldPath = Field(description="A field path; a line is of the kind when it is present.")
    pattern: Regex | None = Field(
        default=None, description="A regular expression the field's text must match too."
    )


class RequestFields(_Model):
    """Where a request line keeps its values. Unset keys come from the preset."""

    status: FieldPath | None = Field(default=None, description="The HTTP status answered.")
    duration: FieldPath | None = Field(default=None, description="The time taken, in ms.")
    path: FieldPath | None = Field(default=None, description="The request's path (a route).")
    method: FieldPath | None = Field(default=None, description="The request's method.")
    when: Rule | None = Field(
        default=None,
        description="Which lines are request lines; unset: those with the status field.",
    )


class CallFields(_Model):
    """Where a call line keeps its values, and how its dependency is named."""

    status: FieldPath | None = Field(default=None, description="The call's HTTP status.")
    duration: FieldPath | None = Field(default=None, description="The call's time, in ms.")
    error: FieldPath | None = Field(
        default=None, description="A field whose presence marks a failed call (Pino's err)."
    )
    dependency_field: FieldPath | None = Field(
        default=None,
        description="A field naming the dependency (a Nest context); unset: the message.",
    )
    dependency_pattern: Regex | None = Field(
        default=None,
        description="A regular expression on that text; group 1 (or the match) names the "
        "dependency.",
    )
    when: Rule | None = Field(
        default=None, description="Which lines are call lines; unset: those naming a dependency."
    )


class Levels(_Model):
    """Threshold expressions for one dependency's check; unset keeps the check's own
    (to remove a level, override ``thresholds."metric{dependency=..}"`` with false)."""

    warning: str | None = Field(default=None, description='The warning threshold, e.g. "> 3s".')
    critical: str | None = Field(default=None, description="The critical threshold.")


class Dependency(_Model):
    """One external dependency: other names it goes by, and its thresholds."""

    aliases: tuple[str, ...] = Field(
        default=(), description="Other names its calls are logged under, e.g. PaymentsClient."
    )
    response_time_p95: Levels = Field(
        default_factory=Levels, description="Thresholds of its external.response_time_p95."
    )
    error_rate: Levels = Field(
        default_factory=Levels, description="Thresholds of its external.error_rate."
    )


_DEPENDENCY_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class LogsSettings(_Model):
    """How log lines map to requests and calls, the dependencies, and the windows;
    where the lines are read (``source``: the files, or a backend's sub-table)."""

    source: Source = Field(
        default="file",
        description="Where the lines are read: log_files, or the backend table of that name.",
    )
    loki: LokiSettings | None = Field(default=None, description='Loki, for source = "loki".')
    cloudwatch: CloudWatchSettings | None = Field(
        default=None, description='CloudWatch Logs Insights, for source = "cloudwatch".'
    )
    prometheus: PrometheusSettings | None = Field(
        default=None, description='The BFF\'s metrics in Prometheus, for source = "prometheus".'
    )
    preset: Preset | None = Field(
        default=None, description="The stack's field names; unset: detected from the lines."
    )
    level_field: FieldPath | None = Field(
        default=None, description="The level: numbers (Pino's 30, 50) or names (info, error)."
    )
    time_field: FieldPath | None = Field(
        default=None, description="The time: epoch ms (Pino's default) or ISO 8601."
    )
    timestamp_field: FieldPath | None = Field(
        default=None, description="An ISO 8601 time, used when time_field is absent."
    )
    message_fields: tuple[FieldPath, ...] | None = Field(
        default=None, description="Where the message is, first found wins."
    )
    request_id_field: FieldPath | None = Field(
        default=None, description="The id shared by the lines logged while serving a request."
    )
    correlation_fields: tuple[FieldPath, ...] | None = Field(
        default=None,
        description="Where a correlation id shows; synthetic-* ids (the monitor's) are left out.",
    )
    user_agent_field: FieldPath | None = Field(
        default=None, description="The User-Agent; synthetic/* (the monitor's) is left out."
    )
    requests: RequestFields = Field(
        default_factory=RequestFields, description="The fields of a request line."
    )
    calls: CallFields = Field(
        default_factory=CallFields, description="The fields of a call line, and its dependency."
    )
    dependencies: dict[str, Dependency] = Field(
        default_factory=dict,
        description="The external dependencies, each with its own checks (a lowercase name); "
        "none unless named.",
    )
    error_level: int | str = Field(
        default=50,
        description="Lines at or above this level are errors: a number (Pino's 50) or a name.",
    )
    slow_ms: float = Field(
        default=2000, gt=0, description="logs.slow_requests counts requests slower than this."
    )
    rate_window_minutes: int = Field(
        default=60,
        ge=1,
        le=1440,
        description="The window of app.error_rate and external.error_rate.",
    )
    recent_window_minutes: int = Field(
        default=5,
        ge=1,
        le=1440,
        description="The window of the error count, the p95s, slow requests and evidence.",
    )
    max_clock_skew_s: float = Field(
        default=60,
        ge=0,
        le=3600,
        description="A line this far ahead counts in the current minute; further, it is skipped.",
    )
    redact_fields: tuple[str, ...] = Field(
        default=DEFAULT_REDACT_FIELDS, description="Keys masked in the evidence's lines."
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in _MOVED.items():
                if old in data:
                    raise ValueError(f"{old} is now {new} (a field path, e.g. 'res.statusCode')")
        return data

    @model_validator(mode="after")
    def _backend_table(self) -> LogsSettings:
        table = None if self.source == "file" else getattr(self, self.source)
        needed = "log_group" if self.source == "cloudwatch" else "url"
        if self.source != "file" and (table is None or not getattr(table, needed)):
            what = f"its {needed} is empty" if table is not None else f"at least its {needed}"
            raise ValueError(
                f'source = "{self.source}" needs a [logs.{self.source}] table ({what})'
            )
        return self

    @model_validator(mode="after")
    def _readable(self) -> LogsSettings:
        """Every shape this table can resolve to can be read (no field both a value and
        an object): said at config load, not when the first run reads the logs."""
        from synthetic.logs.paths import path_tree, shape_paths
        from synthetic.logs.shapes import resolve

        for preset in (self.preset,) if self.preset else PRESETS:
            try:
                path_tree(shape_paths(resolve(self, preset, detected=None)))
            except ValueError as exc:
                raise ValueError(f"{exc} (with the {preset} preset)") from None
        return self

    @field_validator("error_level")
    @classmethod
    def _level(cls, value: int | str) -> int | str:
        if isinstance(value, str) and value.lower() not in LEVELS:
            raise ValueError(f"expected a number or one of {', '.join(LEVELS)}")
        if isinstance(value, int) and not 1 <= value <= 100:
            raise ValueError("expected a level between 1 and 100 (Pino: 50 is error)")
        return value

    @field_validator("dependencies")
    @classmethod
    def _names(cls, value: dict[str, Dependency]) -> dict[str, Dependency]:
        for name in value:
            if not _DEPENDENCY_NAME.match(name):
                raise ValueError(
                    f"dependency names are lowercase words like 'whmcs' (got {name[:40]!r})"
                )
        return value

    @property
    def longest_window(self) -> int:
        return max(self.rate_window_minutes, self.recent_window_minutes)

    @property
    def error_level_number(self) -> int:
        level = self.error_level
        return LEVELS[level.lower()] if isinstance(level, str) else level
