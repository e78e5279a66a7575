"""Health bodies: what a health endpoint answered, read as named entries with a status each.

Pure: a parsed body (or a `Snapshot`) in, a `HealthBody` out. The shape is
detected per response, trying in this order:

    path '<a.b>'     the dotted path configured for the endpoint
                     (``health_entries``), for any other shape
    checks           the guide's GET /health: {"status", "checks": {"database": "ok"}}
    services         the guide's GET /auth/health-check: {"status", "services": {...}}
    terminus         @nestjs/terminus: {"status", "info", "error", "details": {...}},
                     entries from ``details``, else ``info`` and ``error`` together

An entry is a status word, or a table with a ``status`` word (and, from
terminus, a ``message``). Words are read trimmed and lowercased, and
terminus's ``up`` reads ``ok``: the checks' thresholds (``!= 'ok'``,
``== 'degraded'``) keep their meaning; every other word (``down``, ``fail``,
``degraded``) is kept for the thresholds to judge.

A 5xx with a body of a known shape is read like a 200 (terminus answers 503
when an indicator is down; the entries say which). Every failure is a
one-line `MeasurementError` naming the endpoint and what was found, with
names and messages cut, so a hostile or huge body cannot flood a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthetic.errors import MeasurementError, NotJson
from synthetic.results import Measurement
from synthetic.text import printable

if TYPE_CHECKING:
    from synthetic.measure.http import Snapshot

# Bounds on what a body can put into a reason or the evidence.
MAX_NAME = 60
MAX_STATUS = 60
MAX_MESSAGE = 200
MAX_LISTED = 12  # names listed in a reason
MAX_EVIDENCE_ENTRIES = 50

# terminus's healthy word; every other word is kept as read.
_SYNONYMS = {"up": "ok"}


@dataclass(frozen=True)
class HealthEntry:
    """One named entry: its status word (normalised), or why it has none."""

    name: str
    status: str | None
    raw: str | None = None  # the word as the body spelled it (cut)
    message: str | None = None
    problem: str | None = None  # why there is no status word


@dataclass(frozen=True)
class HealthBody:
    """A health endpoint's entries, and the shape they were found in."""

    endpoint: str
    shape: str
    entries: Mapping[str, HealthEntry] = field(default_factory=dict)
    http_status: int = 200

    def entry(self, name: str) -> HealthEntry:
        """The entry ``name``; a `MeasurementError` when it is absent or has no status."""
        where = f"GET {self.endpoint} (shape: {self.shape})"
        found = self.entries.get(name)
        if found is None:
            present = _listing(self.entries) if self.entries else "none"
            raise MeasurementError(
                f"{where}: no entry '{printable(name, MAX_NAME)}'; entries: {present}"
            )
        if found.status is None:
            raise MeasurementError(f"{where}: entry '{printable(name, MAX_NAME)}' {found.problem}")
        return found

    def measure(self, name: str) -> Measurement:
        """The status word of ``name`` as a check's value, its message as the reason's note."""
        found = self.entry(name)
        return Measurement(found.status, evidence=self.evidence(), note=found.message)

    def evidence(self) -> dict[str, Any]:
        """The endpoint, the shape detected and the entries found (as the body spelled them)."""
        shown = list(self.entries.values())[:MAX_EVIDENCE_ENTRIES]
        evidence: dict[str, Any] = {
            "endpoint": self.endpoint,
            "http_status": self.http_status,
            "shape": self.shape,
            "entries": {
                printable(e.name, MAX_NAME): e.raw if e.raw is not None else f"({e.problem})"
                for e in shown
            },
        }
        if len(self.entries) > len(shown):
            evidence["more_entries"] = len(self.entries) - len(shown)
        return evidence


def read_snapshot(snapshot: Snapshot, *, path: str | None = None) -> HealthBody:
    """The entries of a fetched health endpoint: a 2xx or a 5xx with a JSON body of a
    known shape; any other status is a `MeasurementError` naming it."""
    code = snapshot.status_code
    if not (200 <= code < 300 or 500 <= code < 600):
        raise MeasurementError(f"GET {snapshot.path} returned HTTP {code}")
    try:
        body = snapshot.json()
    except NotJson:
        if 200 <= code < 300:
            raise
        kind = snapshot.content_type or "no content type"
        raise MeasurementError(
            f"GET {snapshot.path} returned HTTP {code} with a body that is not JSON ({kind})"
        ) from None
    return read_health(body, endpoint=snapshot.path, path=path, http_status=code)


def read_health(
    body: Any, *, endpoint: str, path: str | None = None, http_status: int = 200
) -> HealthBody:
    """``body`` (parsed JSON) read as named entries; see the module's docstring."""
    where = f"GET {endpoint}" + ("" if 200 <= http_status < 300 else f" (HTTP {http_status})")
    if not isinstance(body, dict):
        raise MeasurementError(
            f"{where}: the body is {_a(body)}, not an object with health entries"
        )
    tried: list[str] = []
    candidates: list[tuple[str, tuple[str, ...]]] = []
    if path:
        candidates.append((f"path '{path}'", tuple(path.split("."))))
    candidates += [("checks", ("checks",)), ("services", ("services",))]
    candidates.append(("terminus", ("details",)))
    for shape, keys in candidates:
        table, missing = _walk(body, keys)
        if isinstance(table, dict):
            return HealthBody(endpoint, shape, _entries(table), http_status)
        tried.append(f"the configured path {missing}" if shape.startswith("path") else missing)
    info, error = body.get("info"), body.get("error")
    if isinstance(info, dict) or isinstance(error, dict):
        merged = {
            **(info if isinstance(info, dict) else {}),
            **(error if isinstance(error, dict) else {}),
        }
        return HealthBody(endpoint, "terminus info/error", _entries(merged), http_status)
    tried.append("info/error")
    top = _listing(body) if body else "none (an empty object)"
    raise MeasurementError(
        f"{where}: no health entries found: tried {', '.join(tried)}; top-level keys: {top}"
    )


def _walk(body: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, str]:
    """``body[k1][k2]...`` and, when that is not a table, how it was tried, for the message."""
    joined = ".".join(keys)
    current: Any = body
    for depth, key in enumerate(keys):
        if not isinstance(current, dict) or key not in current:
            if depth == 0:
                return None, joined if len(keys) == 1 else f"{joined} (no '{key}')"
            at = ".".join(keys[:depth])
            why = f"no '{key}' in {at}" if isinstance(current, dict) else f"{at} is {_a(current)}"
            return None, f"{joined} ({why})"
        current = current[key]
    if not isinstance(current, dict):
        return None, f"{joined} ({_a(current)}, not an object)"
    return current, ""


def _entries(table: dict[str, Any]) -> dict[str, HealthEntry]:
    return {name: _entry(name, value) for name, value in table.items()}


def _entry(name: str, value: Any) -> HealthEntry:
    message = None
    word = value
    if isinstance(value, dict):
        if "status" not in value:
            return HealthEntry(
                name, None, problem=f"is an object without 'status' (keys: {_listing(value)})"
            )
        word = value["status"]
        found = value.get("message", value.get("error"))
        if isinstance(found, str) and found.strip():
            message = printable(found, MAX_MESSAGE)
    elif not isinstance(value, str):
        return HealthEntry(
            name, None, problem=f"is {_a(value)}, not a status word or an object with 'status'"
        )
    if not isinstance(word, str):
        return HealthEntry(name, None, problem=f"has a status that is {_a(word)}, not a word")
    if not word[: 4 * MAX_STATUS].strip().isprintable():
        # An escape sequence must not turn "\x1b[32mok" into "ok": not a word at all.
        return HealthEntry(name, None, problem="has a status with control characters")
    normal = printable(word, MAX_STATUS).lower()
    if not normal:
        return HealthEntry(name, None, problem="has an empty status")
    return HealthEntry(name, _SYNONYMS.get(normal, normal), printable(word, MAX_STATUS), message)


def _listing(table: Mapping[str, Any]) -> str:
    names = [printable(name, MAX_NAME) for name in list(table)[:MAX_LISTED]]
    more = len(table) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (never the value: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _a(value: Any) -> str:
    """``a number``, ``an array``: a parsed value's JSON type with its article."""
    kind = _json_type(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
