"""The stacks' log shapes: presets, their detection, and the resolved mapping.

A `LogShape` is what the analysis reads by: every field as a path, the
request and call rules, how a dependency is named. It comes from a preset
(configured, or detected from the lines) with the ``logs`` table's own keys
on top.

- ``guide``: ``statusCode``, ``duration``, ``path``, ``method``; request id
  ``correlationId``; a call names its dependency in the message.
- ``pino-http``: ``res.statusCode``, ``responseTime``, ``req.url``,
  ``req.method``; request id ``req.id``; calls named in the message.
- ``nestjs-pino``: as pino-http; a call is named by its ``context``
  (``WhmcsService``).
- ``fastify``: as pino-http, on "request completed" (the path from the
  request's "incoming request" line); request id ``reqId``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from synthetic.logs.settings import LogsSettings, Preset, Rule, split_path

_PINO_HTTP_REQUESTS = {
    "status": "res.statusCode",
    "duration": "responseTime",
    "path": "req.url",
    "method": "req.method",
}
_GUIDE_CALLS = {
    "status": "statusCode",
    "duration": "duration",
    "error": "err",
    "dependency_field": None,
    "dependency_pattern": None,
}
_COMMON = {
    "level_field": "level",
    "time_field": "time",
    "timestamp_field": "timestamp",
    "message_fields": ("msg", "message"),
}
PRESET_VALUES: dict[str, dict[str, Any]] = {
    "guide": {
        **_COMMON,
        "request_id_field": "correlationId",
        "correlation_fields": ("correlationId",),
        "user_agent_field": None,
        "requests": {
            "status": "statusCode",
            "duration": "duration",
            "path": "path",
            "method": "method",
        },
        "calls": _GUIDE_CALLS,
    },
    "pino-http": {
        **_COMMON,
        "request_id_field": "req.id",
        "correlation_fields": ("req.headers.x-correlation-id", "req.id"),
        "user_agent_field": "req.headers.user-agent",
        "requests": _PINO_HTTP_REQUESTS,
        "calls": _GUIDE_CALLS,
    },
    "nestjs-pino": {
        **_COMMON,
        "request_id_field": "req.id",
        "correlation_fields": ("req.headers.x-correlation-id", "req.id"),
        "user_agent_field": "req.headers.user-agent",
        "requests": _PINO_HTTP_REQUESTS,
        "calls": {**_GUIDE_CALLS, "dependency_field": "context"},
    },
    "fastify": {
        **_COMMON,
        "request_id_field": "reqId",
        "correlation_fields": ("reqId",),
        "user_agent_field": None,
        # Its error handler logs the error with `res` too, before "request
        # completed": only the line with the response time is the request's.
        "requests": {**_PINO_HTTP_REQUESTS, "when": {"field": "responseTime"}},
        "calls": _GUIDE_CALLS,
    },
}

# What the monitor's own requests carry (`synthetic.measure.http`): their lines are left out.
OWN_CORRELATION_PREFIX = "synthetic-"
OWN_USER_AGENT_PREFIX = "synthetic/"
# A class or client named after its dependency: WhmcsService, SalesforceClient.
NAME_SUFFIXES = (
    "service", "client", "api", "gateway", "adapter", "integration", "connector", "provider",
)  # fmt: skip
NAME_SEPARATORS = "-_. "
_NAME_SUFFIX = re.compile(rf"(?i)[{re.escape(NAME_SEPARATORS)}]?(?:{'|'.join(NAME_SUFFIXES)})$")


@dataclass(frozen=True)
class LogShape:
    """The resolved mapping: field paths (as written) by role, and the rules."""

    preset: str
    detected: str | None  # what the detection saw, or None when configured
    level: str
    time: str
    timestamp: str
    messages: tuple[str, ...]
    request_id: str | None
    correlation: tuple[str, ...]
    user_agent: str | None
    request_status: str
    request_duration: str
    request_path: str
    request_method: str
    request_when: Rule
    call_status: str
    call_duration: str
    call_error: str | None
    call_when: Rule | None
    dependency_field: str | None
    dependency_pattern: str
    dependencies: tuple[str, ...]
    aliases: Mapping[str, str]  # lowercased alias -> dependency
    path_on_other_line: bool = False  # a request's path and method are on another of its lines

    def dependency_of(self, text: str | None) -> str | None:
        """The configured dependency a message (or the dependency field's value) names."""
        if not text:
            return None
        match = re.search(self.dependency_pattern, text)  # re caches the compiled pattern
        if match is None:
            return None
        found = (match.group(1) if match.re.groups else match.group(0)) or ""
        return self.dependency_named(found)

    def dependency_named(self, name: str) -> str | None:
        """The configured dependency ``name`` is (an alias, the name itself, or the name
        with a suffix such as ``Service``), case and spaces aside; else None."""
        candidate = name.strip().lower()
        if candidate in self.aliases:
            return self.aliases[candidate]
        if candidate in self.dependencies:
            return candidate
        trimmed = _NAME_SUFFIX.sub("", candidate)
        return trimmed if trimmed in self.dependencies else None

    def roles(self) -> dict[str, str]:
        """Each mapped role and its field, as the ``logs`` table names them."""
        roles = {
            "requests.status": self.request_status,
            "requests.duration": self.request_duration,
            "requests.path": self.request_path,
            "requests.method": self.request_method,
            "calls.status": self.call_status,
            "calls.duration": self.call_duration,
        }
        if self.dependency_field is not None:
            roles["calls.dependency_field"] = self.dependency_field
        return roles

    def describe(self) -> str:
        """One line for evidence: which shape, and why."""
        how = f"detected from {self.detected}" if self.detected else "configured"
        return f"{self.preset} ({how})"


def resolve(settings: LogsSettings, preset: Preset | str, *, detected: str | None) -> LogShape:
    """The preset's fields with the ``logs`` table's own keys on top."""
    base = PRESET_VALUES[preset]

    def pick(key: str) -> Any:
        value = getattr(settings, key)
        return base[key] if value is None else value

    requests = {**base["requests"], **settings.requests.model_dump(exclude_none=True)}
    when = settings.requests.when or Rule.model_validate(
        base["requests"].get("when", {"field": requests["status"]})
    )
    calls = {**base["calls"], **settings.calls.model_dump(exclude_none=True)}
    aliases = {
        alias.strip().lower(): name
        for name, dependency in settings.dependencies.items()
        for alias in dependency.aliases
    }
    names = sorted({*settings.dependencies, *aliases}, key=len, reverse=True)
    pattern = calls["dependency_pattern"]
    if pattern is None:
        # Named in the message (the guide's "WHMCS API call"), or the field's whole value.
        words = "|".join(re.escape(n) for n in names) or "(?!)"
        pattern = f"(?i)\\b({words})\\b" if calls["dependency_field"] is None else r"^\s*(.+?)\s*$"
    return LogShape(
        preset=preset,
        detected=detected,
        level=pick("level_field"),
        time=pick("time_field"),
        timestamp=pick("timestamp_field"),
        messages=tuple(pick("message_fields")),
        request_id=pick("request_id_field"),
        correlation=tuple(pick("correlation_fields")),
        user_agent=pick("user_agent_field"),
        request_status=requests["status"],
        request_duration=requests["duration"],
        request_path=requests["path"],
        request_method=requests["method"],
        request_when=when,
        call_status=calls["status"],
        call_duration=calls["duration"],
        call_error=calls["error"],
        call_when=settings.calls.when,
        dependency_field=calls["dependency_field"],
        dependency_pattern=pattern,
        dependencies=tuple(settings.dependencies),
        aliases=aliases,
        path_on_other_line=preset == "fastify",
    )


def get_path(record: Any, path: tuple[str, ...]) -> Any:
    """``record[path[0]][path[1]]...``, or None where a part is missing."""
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _has(record: dict[str, Any], path: str) -> bool:
    return get_path(record, split_path(path)) is not None


def detect(records: Iterable[dict[str, Any]]) -> tuple[Preset, str] | None:
    """The preset whose fields the lines carry, and the fields that told; None if unsure.

    fastify's lines carry ``reqId``; pino-http's request lines ``res.statusCode``
    and ``responseTime``, and nestjs-pino's application lines a ``context``
    besides; the guide's lines a top-level ``statusCode`` and ``duration``.
    """
    seen: set[str] = set()
    for record in records:
        if "reqId" in record and ("res" in record or "req" in record):
            seen.add("fastify")
        if _has(record, "res.statusCode") and "responseTime" in record:
            seen.add("pino-http")
        if isinstance(record.get("context"), str):
            seen.add("context")
        if "statusCode" in record and "duration" in record:
            seen.add("guide")
    if "fastify" in seen:
        return "fastify", "reqId with req/res"
    if "pino-http" in seen:
        if "context" in seen:
            return "nestjs-pino", "res.statusCode, responseTime and a Nest context"
        return "pino-http", "res.statusCode and responseTime"
    if "context" in seen:
        return "nestjs-pino", "a Nest context"
    if "guide" in seen:
        return "guide", "statusCode and duration"
    return None
