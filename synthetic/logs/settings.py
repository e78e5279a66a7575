"""The ``logs`` table of an environment: how to read the portal's Pino lines.

Defaults match the monitoring guide: Pino's ``level``/``time``, ``duration``
in ms, ``statusCode``, and external calls found by the guide's
``(WHMCS|Salesforce|Freebit)`` grep on the message. A portal that logs
differently is mapped here, without code::

    [environments.production.logs]
    dependency_field = "integration"   # a field naming the dependency, instead of the pattern
    duration_field = "responseTime"
    rate_window_minutes = 60
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_DEPENDENCY_PATTERN = r"(?i)\b(WHMCS|Salesforce|Freebit)\b"
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


class LogsSettings(BaseModel):
    """How log lines map to requests and external calls, and the windows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_fields: tuple[str, ...] = Field(default=("msg", "message"), min_length=1)
    time_field: str = "time"  # epoch ms (Pino's default)
    timestamp_field: str = "timestamp"  # ISO 8601, used when time_field is absent
    duration_field: str = "duration"  # milliseconds
    status_field: str = "statusCode"
    path_field: str = "path"
    method_field: str = "method"
    correlation_field: str = "correlationId"
    dependency_field: str | None = None
    dependency_pattern: str = DEFAULT_DEPENDENCY_PATTERN
    error_level: int = Field(default=50, ge=1)
    slow_ms: float = Field(default=2000, gt=0)
    rate_window_minutes: int = Field(default=60, ge=1, le=1440)
    recent_window_minutes: int = Field(default=5, ge=1, le=1440)
    max_clock_skew_s: float = Field(default=60, ge=0, le=3600)
    redact_fields: tuple[str, ...] = DEFAULT_REDACT_FIELDS

    @field_validator("dependency_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if compiled.groups < 1:
            raise ValueError("needs a group that captures the dependency's name, like (WHMCS|...)")
        return value

    @property
    def longest_window(self) -> int:
        return max(self.rate_window_minutes, self.recent_window_minutes)

    def dependency_of(self, text: str | None) -> str | None:
        """The dependency a message (or the dependency field's value) names, lowercased."""
        if not text:
            return None
        if self.dependency_field is not None:
            return text.strip().lower() or None
        match = re.search(self.dependency_pattern, text)  # re caches the compiled pattern
        return match.group(1).lower() if match and match.group(1) else None
