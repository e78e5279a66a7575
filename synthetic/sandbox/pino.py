"""Pino-format JSON log lines, as the portal's BFF writes them.

Shared by the sandbox (which logs its requests for the log checks of
``synthetic demo``), the log benchmark's generator and the tests: one place
that knows what a request line and an external-call line look like.
"""

from __future__ import annotations

from typing import Any

import orjson

LEVELS = {"trace": 10, "debug": 20, "info": 30, "warn": 40, "error": 50, "fatal": 60}
SERVICE = "customer-portal-bff"
DEPENDENCY_NAMES = {"salesforce": "Salesforce", "whmcs": "WHMCS", "freebit": "Freebit"}


def _line(fields: dict[str, Any]) -> bytes:
    return orjson.dumps(fields) + b"\n"


def request_line(
    *,
    time_ms: int,
    method: str,
    path: str,
    status: int,
    duration_ms: float,
    correlation_id: str,
    pid: int = 1,
    hostname: str = "bff-1",
    extra: dict[str, Any] | None = None,
) -> bytes:
    """One "request completed" line: level 50 for a 5xx, 40 for a 4xx, else 30."""
    level = 50 if status >= 500 else 40 if status >= 400 else 30
    fields: dict[str, Any] = {
        "level": level,
        "time": time_ms,
        "pid": pid,
        "hostname": hostname,
        "service": SERVICE,
        "correlationId": correlation_id,
        "method": method,
        "path": path,
        "statusCode": status,
        "duration": duration_ms,
        **(extra or {}),
        "msg": "request completed" if status < 500 else "request errored",
    }
    return _line(fields)


def external_line(
    *,
    time_ms: int,
    dependency: str,
    operation: str,
    duration_ms: float,
    correlation_id: str,
    failed: bool = False,
    status: int | None = None,
    pid: int = 1,
    hostname: str = "bff-1",
) -> bytes:
    """One call to an external dependency (``salesforce``, ``whmcs``, ``freebit``).

    The message names the dependency as the guide's ``(WHMCS|Salesforce|Freebit)``
    grep expects; a failed call is logged at level 50 with an ``err``.
    """
    name = DEPENDENCY_NAMES.get(dependency, dependency)
    fields: dict[str, Any] = {
        "level": 50 if failed else 30,
        "time": time_ms,
        "pid": pid,
        "hostname": hostname,
        "service": SERVICE,
        "correlationId": correlation_id,
        "operation": operation,
        "duration": duration_ms,
    }
    if status is not None:
        fields["statusCode"] = status
    if failed:
        fields["err"] = {"type": "Error", "message": f"{name} request failed: ETIMEDOUT"}
        fields["msg"] = f"{name} API error"
    else:
        fields["msg"] = f"{name} API call completed"
    return _line(fields)
