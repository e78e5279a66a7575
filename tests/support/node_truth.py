"""Ground truth for the log metrics, from the files a real Node BFF (tests/node/) wrote.

Independent of synthetic's log code on purpose: the standard library's JSON
and, per stack, what its lines look like (the file headers of
``tests/node/*_bff.js`` describe them):

- ``express`` (pino-http defaults) and ``nest`` (nestjs-pino): a completed
  request is the line with ``res.statusCode`` and ``responseTime`` (ms); its id
  is ``req.id``, and every line logged while serving it carries ``req``.
- ``fastify``: a completed request is the "request completed" line
  (``res.statusCode``, ``responseTime``); every line of a request has ``reqId``.
- Outgoing calls: a ``dependency`` field (express, fastify) or the service's
  ``context`` (nest: ``WhmcsService``...); ``duration`` in ms when logged.

The monitor's own traffic is left out: a request whose id starts with
``synthetic-`` or whose logged ``User-Agent`` starts with ``synthetic/``, and
every line with that request's id. (fastify logs no headers, so there only the
id shows it.)

Windows are whole minutes ending with the minute of ``now`` (README,
"Log-derived metrics"): a line counts in an N-minute window when
``now_minute - N < its_minute <= now_minute``. A p95 is DDSketch's rank,
``sorted(values)[floor(0.95 * (n - 1))]``. A line written to several files
(Pino multistream: combined and error log) counts once: each distinct line
counts as often as the file that has it most often.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STACKS = ("express", "nest", "fastify")
DEPENDENCIES = ("whmcs", "salesforce", "freebit")
NEST_CONTEXTS = {
    "WhmcsService": "whmcs",
    "SalesforceService": "salesforce",
    "FreebitService": "freebit",
}
OWN_ID_PREFIX = "synthetic-"
OWN_AGENT_PREFIX = "synthetic/"
ERROR_LEVEL = 50
SLOW_MS = 2000
RATE_MINUTES = 60
RECENT_MINUTES = 5

Record = dict[str, Any]


@dataclass(frozen=True)
class DependencyTruth:
    calls: int  # rate window
    failed: int  # rate window: level >= 50 or statusCode >= 500
    error_rate: float | None  # failed / calls * 100; None without calls
    durations: tuple[float, ...]  # recent window, sorted; calls that logged a duration
    p95: float | None


@dataclass(frozen=True)
class Truth:
    requests: int  # completed incoming requests, rate window
    server_errors: int  # those answered 5xx
    error_rate: float | None  # app.error_rate
    error_count: int  # logs.error_count: lines of level >= 50, recent window
    durations: tuple[float, ...]  # request durations, recent window, sorted
    p95: float | None  # logs.response_time_p95
    slow_requests: int  # logs.slow_requests: recent requests slower than SLOW_MS
    dependencies: Mapping[str, DependencyTruth]  # every known dependency, without calls too
    own_lines: int  # lines left out as the monitor's own
    unreadable_lines: int  # not a JSON object

    @property
    def external_error_rate(self) -> float | None:
        calls = sum(d.calls for d in self.dependencies.values())
        failed = sum(d.failed for d in self.dependencies.values())
        return percent(failed, calls)

    def metrics(self) -> dict[str, float | None]:
        """The values by the guide's metric names, ``{dependency=...}`` for each dependency."""
        values: dict[str, float | None] = {
            "app.error_rate": self.error_rate,
            "logs.error_count": self.error_count,
            "logs.response_time_p95": self.p95,
            "logs.slow_requests": self.slow_requests,
            "external.error_rate": self.external_error_rate,
        }
        for name, dependency in self.dependencies.items():
            values[f"external.error_rate{{dependency={name}}}"] = dependency.error_rate
            values[f"external.response_time_p95{{dependency={name}}}"] = dependency.p95
        return values


def percent(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole * 100


def p95(ordered: tuple[float, ...]) -> float | None:
    return ordered[math.floor(0.95 * (len(ordered) - 1))] if ordered else None


def in_window(time_ms: int, now_ms: int, minutes: int) -> bool:
    now_minute = now_ms // 60_000
    return now_minute - minutes < time_ms // 60_000 <= now_minute


def read_lines(files: Iterable[Path], since: Mapping[Path, int] | None = None) -> list[bytes]:
    """The distinct lines of ``files`` (from ``since[file]`` bytes on), each as often
    as the file that has it most often."""
    union: Counter[bytes] = Counter()
    for path in files:
        with path.open("rb") as handle:
            handle.seek((since or {}).get(path, 0))
            counts = Counter(line.rstrip(b"\n") for line in handle if line.strip())
        union |= counts  # max of the multiplicities
    return list(union.elements())


def parse(lines: Iterable[bytes]) -> tuple[list[Record], int]:
    records, unreadable = [], 0
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            value = None
        if isinstance(value, dict):
            records.append(value)
        else:
            unreadable += 1
    return records, unreadable


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def request_id(stack: str, record: Record) -> Any:
    if stack == "fastify":
        return record.get("reqId")
    return _mapping(record.get("req")).get("id")


def shows_own_identity(stack: str, record: Record) -> bool:
    identifier = request_id(stack, record)
    if isinstance(identifier, str) and identifier.startswith(OWN_ID_PREFIX):
        return True
    agent = _mapping(_mapping(record.get("req")).get("headers")).get("user-agent")
    return isinstance(agent, str) and agent.startswith(OWN_AGENT_PREFIX)


def is_request(stack: str, record: Record) -> bool:
    """The line that records a completed incoming request."""
    has_status = isinstance(_mapping(record.get("res")).get("statusCode"), int)
    has_time = isinstance(record.get("responseTime"), int | float)
    if stack == "fastify":
        return has_status and has_time and record.get("msg") == "request completed"
    return has_status and has_time


def dependency_of(stack: str, record: Record) -> str | None:
    """The dependency whose outgoing call the line records, if it records one."""
    if stack == "nest":
        return NEST_CONTEXTS.get(str(record.get("context")))
    name = record.get("dependency")
    return name if name in DEPENDENCIES else None


def level(record: Record) -> int:
    value = record.get("level")
    return value if isinstance(value, int) else 0


def number(record: Record, key: str) -> float | None:
    value = record.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def ground_truth(
    stack: str,
    files: Iterable[Path],
    now_ms: int,
    *,
    since: Mapping[Path, int] | None = None,
    rate_minutes: int = RATE_MINUTES,
    recent_minutes: int = RECENT_MINUTES,
) -> Truth:
    """The guide's log metrics for the lines of ``files`` written by a ``stack`` app."""
    if stack not in STACKS:
        raise ValueError(f"stack must be one of {STACKS}, got {stack!r}")
    records, unreadable = parse(read_lines(files, since))
    own_ids = {request_id(stack, r) for r in records if shows_own_identity(stack, r)}
    own_ids.discard(None)
    theirs = [r for r in records if request_id(stack, r) not in own_ids]
    timed = [r for r in theirs if isinstance(r.get("time"), int)]
    rate = [r for r in timed if in_window(r["time"], now_ms, rate_minutes)]
    recent = [r for r in timed if in_window(r["time"], now_ms, recent_minutes)]

    requests = [r for r in rate if is_request(stack, r)]
    server_errors = sum(1 for r in requests if r["res"]["statusCode"] >= 500)
    durations = tuple(sorted(float(r["responseTime"]) for r in recent if is_request(stack, r)))
    return Truth(
        requests=len(requests),
        server_errors=server_errors,
        error_rate=percent(server_errors, len(requests)),
        error_count=sum(1 for r in recent if level(r) >= ERROR_LEVEL),
        durations=durations,
        p95=p95(durations),
        slow_requests=sum(1 for d in durations if d > SLOW_MS),
        dependencies={name: _dependency(stack, name, rate, recent) for name in DEPENDENCIES},
        own_lines=len(records) - len(theirs),
        unreadable_lines=unreadable,
    )


def _dependency(stack: str, name: str, rate: list[Record], recent: list[Record]) -> DependencyTruth:
    calls = [r for r in rate if dependency_of(stack, r) == name]
    failed = sum(
        1 for r in calls if level(r) >= ERROR_LEVEL or (number(r, "statusCode") or 0) >= 500
    )
    durations = tuple(
        sorted(
            d
            for r in recent
            if dependency_of(stack, r) == name and (d := number(r, "duration")) is not None
        )
    )
    return DependencyTruth(
        calls=len(calls),
        failed=failed,
        error_rate=percent(failed, len(calls)),
        durations=durations,
        p95=p95(durations),
    )
