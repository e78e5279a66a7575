"""Generated Pino logs and a straightforward reference computation, for the log tests."""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthetic.logs.settings import LogsSettings
from synthetic.sandbox.pino import external_line, request_line
from tests.support.catalogue_runs import portal_environment

NOW_MS = 1_736_937_000_000  # 2025-01-15T10:30:00Z, a minute boundary
PATHS = ("/api/invoices", "/api/subscriptions", "/api/catalog", "/health")


# The Customer Portal's dependencies as a config file spells them (this
# repository's pyproject.toml says the same: tests/test_config.py checks it).
PORTAL_DEPENDENCIES_TOML = """
[logs.dependencies]
whmcs = {}
salesforce = {}
freebit = { response_time_p95 = { warning = "> 3s", critical = "> 10s" } }
"""


@functools.cache
def _portal_dependencies() -> dict[str, Any]:
    dumped: dict[str, Any] = portal_environment().logs.model_dump()["dependencies"]
    return dumped


def portal_logs(table: Mapping[str, Any] | None = None) -> LogsSettings:
    """A ``logs`` table with the Customer Portal's dependencies (whmcs, salesforce,
    freebit: its config's), under ``table``'s own keys."""
    return LogsSettings.model_validate({"dependencies": _portal_dependencies(), **(table or {})})


@dataclass(frozen=True)
class Line:
    at: int
    kind: str  # request | salesforce | whmcs | freebit
    duration: float
    status: int | None
    failed: bool
    raw: bytes


def generate(count: int, *, seed: int = 1, span_ms: int = 90 * 60_000) -> list[Line]:
    """``count`` lines spread (out of order a little) over ``span_ms`` before NOW_MS."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        at = NOW_MS - span_ms + i * span_ms // count + rng.randint(-3000, 3000)
        at = min(at, NOW_MS)
        duration = float(round(rng.lognormvariate(5.5, 1.0)))
        if rng.random() < 0.2:
            dependency = rng.choice(["salesforce", "whmcs", "freebit"])
            failed = rng.random() < 0.05
            raw = external_line(
                time_ms=at, dependency=dependency, operation="q", duration_ms=duration,
                correlation_id=f"req-{i}", failed=failed,
            )  # fmt: skip
            lines.append(Line(at, dependency, duration, None, failed, raw))
        else:
            status = 500 if rng.random() < 0.03 else 200
            raw = request_line(
                time_ms=at, method="GET", path=rng.choice(PATHS), status=status,
                duration_ms=duration, correlation_id=f"req-{i}",
                extra={"email": f"user{i}@example.com"},
            )  # fmt: skip
            lines.append(Line(at, "request", duration, status, status >= 500, raw))
    return lines


def write(path: Path, lines: list[Line]) -> None:
    path.write_bytes(b"".join(line.raw for line in lines))


def in_window(line: Line, minutes: int, now_ms: int = NOW_MS) -> bool:
    now_minute = now_ms // 60_000
    return now_minute - minutes < line.at // 60_000 <= now_minute


def rank_value(values: list[float], q: float) -> float:
    """The value DDSketch's quantile estimates: sorted(values)[floor(q * (n - 1))]."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]
