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

    field: FieldPath
    pattern: Regex | None = None


class RequestFields(_Model):
    """Where a request line keeps its values. Unset keys come from the preset."""

    status: FieldPath | None = None
    duration: FieldPath | None = None  # milliseconds
    path: FieldPath | None = None
    method: FieldPath | None = None
    when: Rule | None = None  # default: the status field is present


class CallFields(_Model):
    """Where a call line keeps its values, and how its dependency is named."""

    status: FieldPath | None = None
    duration: FieldPath | None = None  # milliseconds
    error: FieldPath | None = None  # a field whose presence marks a failed call (Pino's ``err``)
    dependency_field: FieldPath | None = None  # the field naming the dependency; default: message
    dependency_pattern: Regex | None = None  # on that text; group 1 (or the match) names it
    when: Rule | None = None


class Levels(_Model):
    """Threshold expressions for one dependency's check; unset keeps the check's own
    (to remove a level, override ``thresholds."metric{dependency=..}"`` with false)."""

    warning: str | None = None
    critical: str | None = None


class Dependency(_Model):
    """One external dependency: other names it goes by, and its thresholds."""

    aliases: tuple[str, ...] = ()
    response_time_p95: Levels = Field(default_factory=Levels)
    error_rate: Levels = Field(default_factory=Levels)


def _guide_dependencies() -> dict[str, Dependency]:
    # The guide: Freebit is slower by nature, 3 s / 10 s; the others 2 s / 5 s.
    return {
        "whmcs": Dependency(),
        "salesforce": Dependency(),
        "freebit": Dependency(response_time_p95=Levels(warning="> 3s", critical="> 10s")),
    }


_DEPENDENCY_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class LogsSettings(_Model):
    """How log lines map to requests and calls, the dependencies, and the windows;
    where the lines are read (``source``: the files, or a backend's sub-table)."""

    source: Source = "file"
    loki: LokiSettings | None = None
    cloudwatch: CloudWatchSettings | None = None
    prometheus: PrometheusSettings | None = None
    preset: Preset | None = None  # None: detected from the lines
    level_field: FieldPath | None = None
    time_field: FieldPath | None = None  # epoch ms (Pino's default) or ISO 8601
    timestamp_field: FieldPath | None = None  # ISO 8601, used when time_field is absent
    message_fields: tuple[FieldPath, ...] | None = None
    request_id_field: FieldPath | None = None  # the lines logged while serving one request
    correlation_fields: tuple[FieldPath, ...] | None = None  # where a correlation id shows
    user_agent_field: FieldPath | None = None
    requests: RequestFields = Field(default_factory=RequestFields)
    calls: CallFields = Field(default_factory=CallFields)
    dependencies: dict[str, Dependency] = Field(default_factory=_guide_dependencies)
    error_level: int | str = 50
    slow_ms: float = Field(default=2000, gt=0)
    rate_window_minutes: int = Field(default=60, ge=1, le=1440)
    recent_window_minutes: int = Field(default=5, ge=1, le=1440)
    max_clock_skew_s: float = Field(default=60, ge=0, le=3600)
    redact_fields: tuple[str, ...] = DEFAULT_REDACT_FIELDS

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
