"""Run one real check of the catalogue against a base URL, in a process of its own.

    python -m tests.hostile.probe '{"check": "health.status", "base_url": "http://..."}'

Prints one JSON line: the outcome (severity and reason, from the plugin's own
`evaluate` / `classify`), the wall time of the check, the process's peak RSS
(``VmHWM``, which includes the imports: the monitor pays for them too; not
``ru_maxrss``, which a process inherits from the one that started it) and the
threads left running after it. A separate process, so the peak RSS is
the check's alone, and a hung check can be killed without taking the tests.

The check functions are the catalogue's own, called with what their fixtures
would give them; the spec (metric, unit, thresholds) is read from their markers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from checks.check_application import check_active_connections, check_response_time_p95
from checks.check_health import check_endpoint, check_health_entry, check_health_status
from checks.check_queues import check_whmcs_queue_size
from checks.settings import PortalSettings
from synthetic.config import Environment
from synthetic.measure.health import read_snapshot
from synthetic.measure.http import BFFClient, HttpSession
from synthetic.outcome import classify, evaluate
from synthetic.spec import CheckSpec
from synthetic.thresholds import parse_threshold

RUN_ID = "20260101T000000Z-hostile"

# metric -> (check function, how to call it with what its fixtures give)
CHECKS: dict[str, tuple[Callable[..., Any], Callable[[BFFClient, Environment], Any]]] = {
    "health.status": (
        check_health_status,
        lambda bff, env: check_health_status(bff.snapshot("/health").json()),
    ),
    "health.check": (
        check_health_entry,
        lambda bff, env: check_health_entry(read_snapshot(bff.snapshot("/health")), "database"),
    ),
    "endpoint.status": (check_endpoint, lambda bff, env: check_endpoint(bff, "/health")),
    "whmcs.queue_size": (
        check_whmcs_queue_size,
        lambda bff, env: check_whmcs_queue_size(bff.json("/health/queues")),
    ),
    "app.active_connections": (
        check_active_connections,
        lambda bff, env: check_active_connections(bff, env, portal_settings_of(env)),
    ),
    "app.response_time_p95": (
        check_response_time_p95,
        lambda bff, env: check_response_time_p95(bff, portal_settings_of(env)),
    ),
}


def portal_settings_of(environment: Environment) -> PortalSettings:
    return PortalSettings.model_validate(dict(environment.params))


def spec_of(function: Callable[..., Any]) -> CheckSpec:
    """The check's spec from its own markers (as the plugin reads them)."""
    marks = {mark.name: mark for mark in getattr(function, "pytestmark", [])}
    metric = marks["metric"]
    unit = metric.kwargs.get("unit")

    def threshold(level: str) -> Any:
        mark = marks.get(level)
        return parse_threshold(mark.args[0], unit=unit) if mark else None

    return CheckSpec(
        node_id=function.__name__,
        metric=metric.args[0],
        unit=unit,
        component=None,
        runbook=None,
        priority="P3",
        warning=threshold("warning"),
        critical=threshold("critical"),
    )


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux's VmHWM), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def probe(request: dict[str, Any]) -> dict[str, Any]:
    settings = {"timeout_s": 1.0, "retries": 0, "retry_budget_s": 0.0, **request.get("env", {})}
    base_url = request["base_url"]
    environment = Environment(
        name="hostile",
        base_url=base_url,
        metrics_url=f"{base_url}/metrics",
        params={"connection_capacity": 100},
        **settings,
    )
    session = HttpSession(environment, run_id=RUN_ID)
    bff = BFFClient(session, check=request["check"])
    function, call = CHECKS[request["check"]]
    spec = spec_of(function)
    rss_before = peak_rss_mb()
    started = time.monotonic()
    try:
        outcome = evaluate(spec, call(bff, environment))
    except BaseException as exc:
        outcome = classify(spec, exc)
    seconds = time.monotonic() - started
    burst_threads = [t.name for t in threading.enumerate() if t.name.startswith("p95")]
    session.close()
    return {
        "severity": outcome.severity.value,
        "reason": outcome.reason,
        "unreachable": outcome.unreachable,
        "seconds": round(seconds, 3),
        "rss_mb": peak_rss_mb(),
        "rss_before_mb": rss_before,
        "burst_threads_left": burst_threads,
    }


if __name__ == "__main__":
    print(json.dumps(probe(json.loads(sys.argv[1]))), flush=True)
