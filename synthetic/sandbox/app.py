"""The simulated Customer Portal BFF: its state and its answers, without sockets.

`Bff.handle` turns one request (method, target, body) into a `Reply`: the
status, content type and body to send, plus whether to delay it (``slow``) or
to reset the connection instead (``down``). `synthetic.sandbox.server` does
the HTTP around it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from synthetic.errors import ConfigError
from synthetic.sandbox.scenarios import SCENARIOS, SPECS, QueueSpec, ScenarioSpec, validate_scenario
from synthetic.text import iso_utc

ADMIN_PATH: Final = "/__sandbox/scenario"
JSON_TYPE: Final = "application/json; charset=utf-8"
HTML_TYPE: Final = "text/html; charset=utf-8"
PROMETHEUS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_HTML_PAGE: Final = (
    b"<!DOCTYPE html>\n<html><head><title>Customer Portal</title></head>"
    b"<body><h1>Scheduled maintenance</h1>"
    b"<p>The Customer Portal is being updated. Please try again later.</p>"
    b"</body></html>\n"
)


@dataclass(frozen=True)
class Reply:
    """What to answer to one request.

    ``drop`` means: send nothing and reset the connection. ``delay_s`` is
    waited before answering. ``scenario`` is the scenario that produced it.
    """

    status: int
    content_type: str
    body: bytes
    scenario: str
    delay_s: float = 0.0
    drop: bool = False


@dataclass
class _QueueCounters:
    total: int
    completed: int
    failed: int
    fetches: int = 0

    def advance(self, spec: QueueSpec) -> None:
        self.fetches += 1
        failed = spec.failed_per_fetch if self.fetches % spec.failed_every == 0 else 0
        self.completed += spec.completed_per_fetch
        self.failed += failed
        self.total += spec.completed_per_fetch + failed

    def metrics(self, spec: QueueSpec) -> dict[str, int]:
        return {
            "totalRequests": self.total,
            "completedRequests": self.completed,
            "failedRequests": self.failed,
            "queueSize": spec.queue_sizes[max(self.fetches - 1, 0) % len(spec.queue_sizes)],
            "pendingRequests": spec.pending,
            "averageWaitTime": spec.average_wait_ms,
            "averageExecutionTime": spec.average_execution_ms,
        }


def _now() -> str:
    """ISO 8601 in UTC with milliseconds, as JavaScript's ``toISOString``."""
    return iso_utc(timespec="milliseconds")


def _json(data: object) -> bytes:
    """Compact JSON, as Express sends it."""
    return json.dumps(data, separators=(",", ":")).encode()


def _truncate_json(body: bytes) -> bytes:
    """Cut a JSON document in half: never valid, the closing brace is gone."""
    return body[: max(len(body) // 2, 1)]


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(round(value, 6))


class Bff:
    """The simulated BFF: current scenario and cumulative counters, thread-safe."""

    def __init__(self, scenario: str = "healthy", *, slow_delay_s: float = 2.5) -> None:
        self._lock = threading.Lock()
        self._scenario = validate_scenario(scenario)
        self._slow_delay_s = slow_delay_s
        self._whmcs = _QueueCounters(total=1500, completed=1496, failed=2)
        self._salesforce = _QueueCounters(total=4200, completed=4199, failed=0)
        self._cache_hits = 9500
        self._cache_misses = 500
        self._served: Counter[tuple[str, str, int]] = Counter()
        self._started = time.time()
        self._routes: dict[str, Callable[[ScenarioSpec], Reply]] = {
            "/health": self._health,
            "/health/queues": self._queues,
            "/health/queues/whmcs": self._whmcs_queue,
            "/health/queues/salesforce": self._salesforce_queue,
            "/health/catalog/cache": self._catalog_cache,
            "/auth/health-check": self._auth_health,
            "/metrics": self._metrics,
        }

    @property
    def scenario(self) -> str:
        with self._lock:
            return self._scenario

    def set_scenario(self, name: str) -> None:
        checked = validate_scenario(name)
        with self._lock:
            self._scenario = checked

    def handle(self, method: str, target: str, body: bytes = b"") -> Reply:
        """Answer one request; ``target`` is the request target (path and query)."""
        path = urlsplit(target).path or "/"
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        if path == ADMIN_PATH:
            return self._admin(method, body)
        with self._lock:
            spec = SPECS[self._scenario]
            if spec.mode == "down":
                return Reply(0, "", b"", spec.name, drop=True)
            route = self._routes.get(path)
            if route is not None and method in ("GET", "HEAD"):
                reply = route(spec)
            else:
                reply = self._error(404, f"Cannot {method} {path}", spec.name)
            label = path if route is not None else "unmatched"
            self._served[(method, label, reply.status)] += 1
        if spec.mode == "slow":
            return Reply(
                reply.status, reply.content_type, reply.body, spec.name, self._slow_delay_s
            )
        return reply

    # -- admin --------------------------------------------------------------

    def _admin(self, method: str, body: bytes) -> Reply:
        if method in ("PUT", "POST"):
            try:
                data: Any = json.loads(body)
                if not isinstance(data, dict) or "scenario" not in data:
                    raise ConfigError('the body must be JSON like {"scenario": "degraded"}')
                self.set_scenario(data["scenario"])
            except (ValueError, UnicodeDecodeError) as exc:  # ConfigError, JSONDecodeError
                message = str(exc) if isinstance(exc, ConfigError) else f"invalid JSON: {exc}"
                return self._error(400, message, self.scenario)
        elif method not in ("GET", "HEAD"):
            return self._error(404, f"Cannot {method} {ADMIN_PATH}", self.scenario)
        scenario = self.scenario
        return Reply(
            200, JSON_TYPE, _json({"scenario": scenario, "scenarios": [*SCENARIOS]}), scenario
        )

    @staticmethod
    def _error(status: int, message: str, scenario: str) -> Reply:
        return Reply(status, JSON_TYPE, _json({"statusCode": status, "message": message}), scenario)

    # -- endpoints (called with the lock held) ------------------------------

    def _health(self, spec: ScenarioSpec) -> Reply:
        if spec.mode == "malformed":
            return Reply(200, HTML_TYPE, _HTML_PAGE, spec.name)
        body = {
            "status": spec.health_status,
            "checks": {"database": spec.database, "cache": spec.cache},
        }
        return Reply(503 if spec.mode == "errors" else 200, JSON_TYPE, _json(body), spec.name)

    def _whmcs_body(self, spec: ScenarioSpec) -> dict[str, Any]:
        return {"health": spec.whmcs.health, "metrics": self._whmcs.metrics(spec.whmcs)}

    def _salesforce_body(self, spec: ScenarioSpec) -> dict[str, Any]:
        return {
            "health": spec.salesforce.health,
            "metrics": self._salesforce.metrics(spec.salesforce),
            "dailyUsage": {"used": spec.daily_used, "limit": spec.daily_limit},
        }

    def _reply(self, spec: ScenarioSpec, body: dict[str, Any]) -> Reply:
        """A 200 JSON reply, or the scenario's 500 / truncated version of it."""
        if spec.mode == "errors":
            return self._error(500, "Internal server error", spec.name)
        data = _json(body)
        if spec.mode == "malformed":
            data = _truncate_json(data)
        return Reply(200, JSON_TYPE, data, spec.name)

    def _queues(self, spec: ScenarioSpec) -> Reply:
        self._whmcs.advance(spec.whmcs)
        self._salesforce.advance(spec.salesforce)
        if spec.mode == "malformed":
            whmcs = self._whmcs.metrics(spec.whmcs)
            salesforce = self._salesforce.metrics(spec.salesforce)
            wrong = {
                "timestamp": _now(),
                "whmcs": {"health": spec.whmcs.health, "queueSize": str(whmcs["queueSize"])},
                "salesforce": {
                    "health": spec.salesforce.health,
                    "metrics": None,
                    "queueSize": str(salesforce["queueSize"]),
                    "dailyUsage": f"{spec.daily_used}/{spec.daily_limit}",
                },
            }
            return Reply(200, JSON_TYPE, _json(wrong), spec.name)
        body = {
            "timestamp": _now(),
            "whmcs": self._whmcs_body(spec),
            "salesforce": self._salesforce_body(spec),
        }
        return self._reply(spec, body)

    def _whmcs_queue(self, spec: ScenarioSpec) -> Reply:
        self._whmcs.advance(spec.whmcs)
        return self._reply(spec, {"timestamp": _now(), **self._whmcs_body(spec)})

    def _salesforce_queue(self, spec: ScenarioSpec) -> Reply:
        self._salesforce.advance(spec.salesforce)
        return self._reply(spec, {"timestamp": _now(), **self._salesforce_body(spec)})

    def _catalog_cache(self, spec: ScenarioSpec) -> Reply:
        self._cache_hits += spec.cache_hits_per_fetch
        self._cache_misses += spec.cache_misses_per_fetch
        metrics = {
            "size": 128,
            "hits": self._cache_hits,
            "misses": self._cache_misses,
            "hitRate": spec.hit_rate,
            "ttlSeconds": 300,
        }
        return self._reply(
            spec, {"timestamp": _now(), "status": spec.catalog_status, "metrics": metrics}
        )

    def _auth_health(self, spec: ScenarioSpec) -> Reply:
        services = {
            "database": spec.database_service,
            "whmcs": spec.whmcs_service,
            "salesforce": spec.salesforce_service,
        }
        body = {"timestamp": _now(), "status": spec.auth_status, "services": services}
        if spec.mode == "errors":  # the integrations answer, reporting WHMCS failing
            return Reply(200, JSON_TYPE, _json(body), spec.name)
        return self._reply(spec, body)

    def _metrics(self, spec: ScenarioSpec) -> Reply:
        text = self._exposition(spec)
        if spec.mode == "malformed":
            cut = text.index("\nnodejs_eventloop_lag_seconds ") + len("\nnodejs_eventloop")
            text = text[:cut]
        return Reply(200, PROMETHEUS_TYPE, text.encode(), spec.name)

    def _exposition(self, spec: ScenarioSpec) -> str:
        """Prometheus text format 0.0.4, as prom-client renders a Node.js BFF's registry."""
        uptime = time.time() - self._started
        user = 12.5 + uptime * 0.04
        system = 3.1 + uptime * 0.01
        lines: list[str] = []

        def family(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {_number(value)}" for labels, value in samples)

        family(
            "process_cpu_user_seconds_total",
            "counter",
            "Total user CPU time spent in seconds.",
            [("", user)],
        )
        family(
            "process_cpu_system_seconds_total",
            "counter",
            "Total system CPU time spent in seconds.",
            [("", system)],
        )
        family(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            [("", user + system)],
        )
        family(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            [("", int(self._started) - 26 * 3600)],
        )
        family(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            [("", 187_654_144)],
        )
        family(
            "nodejs_eventloop_lag_seconds",
            "gauge",
            "Lag of event loop in seconds.",
            [("", spec.eventloop_lag_s)],
        )
        family(
            "nodejs_active_handles_total",
            "gauge",
            "Total number of active handles.",
            [("", 42)],
        )
        family(
            "nodejs_heap_size_used_bytes",
            "gauge",
            "Process heap size used from Node.js in bytes.",
            [("", 98_304_512)],
        )
        family(
            "bff_http_active_connections",
            "gauge",
            "Number of open HTTP connections.",
            [("", spec.active_connections)],
        )
        family(
            "bff_http_max_connections",
            "gauge",
            "Maximum number of HTTP connections (server capacity).",
            [("", spec.max_connections)],
        )
        family(
            "bff_http_requests_total",
            "counter",
            "Total number of HTTP requests served.",
            [
                (f'{{method="{method}",route="{route}",status_code="{status}"}}', count)
                for (method, route, status), count in sorted(self._served.items())
            ],
        )
        return "\n".join(lines) + "\n"
