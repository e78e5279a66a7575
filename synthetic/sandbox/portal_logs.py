"""The sandbox portal's Pino log: the traffic a scenario would have logged.

`synthetic demo` keeps one ``combined.log`` in its results directory and,
before each run, appends the requests and external calls the portal would
have logged since the file's last line (at most the last hour), shaped by
the scenario: error shares, durations, failing dependencies. The log checks
then read it like a real BFF's log: incrementally, across demo runs, with a
rotation when the file grows past `ROTATE_BYTES`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from synthetic.sandbox.pino import external_line, request_line

HISTORY_MS = 60 * 60_000  # the longest log window (app.error_rate's hour)
ROTATE_BYTES = 16 * 1024 * 1024
DEPENDENCIES = ("salesforce", "whmcs", "freebit")
PATHS = ("/api/invoices", "/api/subscriptions", "/api/catalog", "/api/orders", "/api/auth/me")


@dataclass(frozen=True)
class LogProfile:
    """How one scenario's traffic looks in the log (per minute, shares of 1)."""

    requests_per_minute: int = 120
    server_error_share: float = 0.002
    median_ms: float = 120.0
    slow_share: float = 0.0
    external_per_minute: int = 30
    external_median_ms: Mapping[str, float] = field(
        default_factory=lambda: {"salesforce": 300.0, "whmcs": 250.0, "freebit": 600.0}
    )
    external_failure_share: Mapping[str, float] = field(default_factory=dict)
    garbage_share: float = 0.0
    silent_last_ms: int = 0  # the portal stopped logging this long ago (down)


_HEALTHY = LogProfile()
PROFILES: Mapping[str, LogProfile] = {
    "healthy": _HEALTHY,
    "degraded": LogProfile(server_error_share=0.02, median_ms=450.0, slow_share=0.01),
    "whmcs-backlog": LogProfile(
        external_median_ms={**_HEALTHY.external_median_ms, "whmcs": 3500.0},
        external_failure_share={"whmcs": 0.12},
    ),
    "salesforce-quota": LogProfile(external_failure_share={"salesforce": 0.03}),
    "slow": LogProfile(median_ms=2300.0, slow_share=0.05),
    "errors": LogProfile(server_error_share=0.1),
    "down": LogProfile(silent_last_ms=3 * 60_000),
    "malformed": LogProfile(garbage_share=0.01),
}


def extend(path: Path, scenario: str, now_ms: int, *, seed: int | None = None) -> int:
    """Append the scenario's traffic since the log's last line (or the last hour).

    Returns the number of lines written. The file is rotated to ``<name>.1``
    first when it has grown past `ROTATE_BYTES`, as logrotate would.
    """
    profile = PROFILES.get(scenario, _HEALTHY)
    path.parent.mkdir(parents=True, exist_ok=True)
    start = max(_last_time_ms(path) + 1, now_ms - HISTORY_MS)
    if path.exists() and path.stat().st_size > ROTATE_BYTES:
        os.replace(path, path.with_name(path.name + ".1"))
    end = now_ms - profile.silent_last_ms
    rng = random.Random(seed if seed is not None else now_ms)
    lines = [
        line
        for minute in range(start, end, 60_000)
        for line in _minute(profile, rng, minute, min(60_000, end - minute))
    ]
    lines.sort(key=lambda pair: pair[0])
    with path.open("ab") as log:
        log.write(b"".join(line for _, line in lines))
    return len(lines)


def _minute(
    profile: LogProfile, rng: random.Random, start_ms: int, length_ms: int
) -> list[tuple[int, bytes]]:
    """The lines of ``length_ms`` (at most a minute) from ``start_ms``."""
    share = length_ms / 60_000
    first = start_ms // 60_000  # events are numbered across minutes: exact shares
    lines: list[tuple[int, bytes]] = []
    for number in range(round(profile.requests_per_minute * share)):
        at = start_ms + rng.randrange(length_ms)
        if rng.random() < profile.garbage_share:
            lines.append((at, b"Error: ECONNRESET at TLSSocket.onConnectEnd (not JSON)\n"))
            continue
        slow = rng.random() < profile.slow_share
        duration = rng.uniform(2500, 8000) if slow else rng.lognormvariate(0, 0.5)
        counted = first * profile.requests_per_minute + number
        status = 500 if _every(counted, profile.server_error_share) else 200
        line = request_line(
            time_ms=at,
            method=rng.choice(("GET", "GET", "GET", "POST")),
            path=rng.choice(PATHS),
            status=status,
            duration_ms=round(duration if slow else duration * profile.median_ms),
            correlation_id=f"req-{at:x}-{number}",
        )
        lines.append((at, line))
    for number in range(round(profile.external_per_minute * share)):
        at = start_ms + rng.randrange(length_ms)
        dependency = DEPENDENCIES[number % len(DEPENDENCIES)]
        counted = (first * profile.external_per_minute + number) // len(DEPENDENCIES)
        failed = _every(counted, profile.external_failure_share.get(dependency, 0.001))
        median = profile.external_median_ms.get(dependency, 300.0)
        line = external_line(
            time_ms=at,
            dependency=dependency,
            operation="query",
            duration_ms=round(median * rng.lognormvariate(0, 0.5)),
            correlation_id=f"ext-{at:x}-{number}",
            failed=failed,
        )
        lines.append((at, line))
    return lines


def _every(number: int, share: float) -> bool:
    """Whether the ``number``-th event is one of a ``share`` spread evenly (exact
    shares, so a scenario's rates are the same every run)."""
    return int((number + 1) * share) > int(number * share)


def _last_time_ms(path: Path) -> int:
    """The ``time`` of the file's last complete line; 0 when there is none."""
    import orjson

    try:
        with path.open("rb") as log:
            log.seek(max(path.stat().st_size - 65536, 0))
            tail = log.read().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(tail):
        try:
            moment = orjson.loads(line).get("time")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        if isinstance(moment, int):
            return moment
    return 0
