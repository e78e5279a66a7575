"""The sandbox's scenarios: what the simulated Customer Portal BFF reports.

Pure data, no I/O. Each scenario is a `ScenarioSpec`; `SPECS` maps the names
in `SCENARIOS` to them. The values are chosen against the thresholds of the
portal's monitoring guide (queue size warning >10 / critical >50, failed
requests warning >5 / critical >20, Salesforce daily usage warning >80% /
critical >95%, active connections warning >80% / critical >95%, cache hit
rate warning <80% / critical <60%, response time p95 warning >2 s / critical
>5 s)::

    scenario          what a check sees
    ----------------  ------------------------------------------------------------
    healthy           /health ok (database ok, cache ok); whmcs and salesforce
                      healthy, queueSize cycling 0-2, failedRequests +1 every
                      10th (whmcs) / 20th (salesforce) fetch; dailyUsage
                      5000/15000 (33%); /auth/health-check all ok; catalog cache
                      ok, hitRate 0.95; 40/200 active connections (20%)
    degraded          /health degraded (cache "fail"); whmcs degraded, queueSize
                      12 (warning), failedRequests +8 per fetch (warning);
                      salesforce degraded, queueSize 3; /auth/health-check
                      degraded (whmcs and salesforce "degraded"); catalog cache
                      degraded, hitRate 0.75 (warning); 170/200 connections (85%,
                      warning); event loop lag 80 ms
    whmcs-backlog     whmcs unhealthy, queueSize 57 (critical), failedRequests
                      +25 per fetch (critical), averageWaitTime 12.5 s;
                      /auth/health-check whmcs "degraded"; the rest healthy
    salesforce-quota  salesforce degraded, dailyUsage 14500/15000 (96.7%,
                      critical); /auth/health-check salesforce "degraded"; the
                      rest healthy
    slow              the healthy data, but every non-admin response is delayed
                      by the sandbox's slow_delay_s (2.5 s by default: a
                      response time p95 of about 2.5 s, warning > 2 s); event
                      loop lag 300 ms
    errors            /health -> 503 {"status": "degraded", "checks":
                      {"database": "fail", "cache": "ok"}}; /health/queues*,
                      /health/catalog/cache -> 500 {"statusCode": 500,
                      "message": "Internal server error"}; /auth/health-check ->
                      200, status "failing" (whmcs "failing"); /metrics -> 200
                      with 195/200 active connections (97.5%, critical:
                      requests pile up behind the failing database);
                      whmcs failedRequests +25 per fetch behind the 500s
    down              every non-admin request's connection is reset without a
                      response (SO_LINGER 0): clients raise a transport error
    malformed         /health -> 200 text/html page; /health/queues -> 200 JSON
                      of the wrong shape (whmcs without "metrics", queueSize a
                      string, salesforce "metrics" null, dailyUsage a string);
                      the other endpoints -> 200 with truncated JSON; /metrics ->
                      truncated exposition (last line cut inside a name)

Counters (totalRequests, completedRequests, failedRequests, cache hits and
misses) are cumulative within a sandbox and only grow: every fetch of a queue
endpoint (or of the catalog cache) advances them by the current scenario's
increments, whatever the scenario, except ``down`` where nothing is served.
Compare them between runs (deltas), as a monitoring check would.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final, Literal

from synthetic.errors import ConfigError

QueueHealth = Literal["healthy", "degraded", "unhealthy"]
CheckStatus = Literal["ok", "fail"]
ServiceStatus = Literal["ok", "degraded", "failing"]
CacheStatus = Literal["ok", "degraded"]
Mode = Literal["normal", "slow", "errors", "down", "malformed"]

SCENARIOS: Final[tuple[str, ...]] = (
    "healthy",
    "degraded",
    "whmcs-backlog",
    "salesforce-quota",
    "slow",
    "errors",
    "down",
    "malformed",
)


@dataclass(frozen=True)
class QueueSpec:
    """One request queue (WHMCS or Salesforce) in one scenario.

    Times are milliseconds, as the BFF reports them. ``queue_sizes`` is cycled
    through by fetch count; ``failed_per_fetch`` is added on every
    ``failed_every``-th fetch.
    """

    health: QueueHealth
    queue_sizes: tuple[int, ...]
    pending: int
    average_wait_ms: int
    average_execution_ms: int
    completed_per_fetch: int
    failed_per_fetch: int
    failed_every: int = 1


@dataclass(frozen=True)
class ScenarioSpec:
    """Everything the simulated BFF reports in one scenario."""

    name: str
    summary: str
    mode: Mode
    database: CheckStatus
    cache: CheckStatus
    whmcs: QueueSpec
    salesforce: QueueSpec
    daily_used: int
    daily_limit: int
    database_service: ServiceStatus
    whmcs_service: ServiceStatus
    salesforce_service: ServiceStatus
    catalog_status: CacheStatus
    cache_hits_per_fetch: int
    cache_misses_per_fetch: int
    active_connections: int
    max_connections: int
    eventloop_lag_s: float

    @property
    def hit_rate(self) -> float:
        """The catalog cache hit rate this scenario reports (0..1)."""
        fetched = self.cache_hits_per_fetch + self.cache_misses_per_fetch
        return round(self.cache_hits_per_fetch / fetched, 4) if fetched else 0.0

    @property
    def health_status(self) -> Literal["ok", "degraded"]:
        """The top-level status of ``GET /health``."""
        return "ok" if self.database == "ok" and self.cache == "ok" else "degraded"

    @property
    def auth_status(self) -> ServiceStatus:
        """The top-level status of ``GET /auth/health-check``: the worst service."""
        order: tuple[ServiceStatus, ...] = ("ok", "degraded", "failing")
        services = (self.database_service, self.whmcs_service, self.salesforce_service)
        return max(services, key=order.index)


_HEALTHY_WHMCS = QueueSpec(
    health="healthy",
    queue_sizes=(0, 1, 2, 1),
    pending=2,
    average_wait_ms=50,
    average_execution_ms=250,
    completed_per_fetch=12,
    failed_per_fetch=1,
    failed_every=10,
)
_HEALTHY_SALESFORCE = QueueSpec(
    health="healthy",
    queue_sizes=(1, 0, 2, 0),
    pending=1,
    average_wait_ms=80,
    average_execution_ms=420,
    completed_per_fetch=8,
    failed_per_fetch=1,
    failed_every=20,
)

HEALTHY: Final = ScenarioSpec(
    name="healthy",
    summary="everything ok and healthy, well under every threshold",
    mode="normal",
    database="ok",
    cache="ok",
    whmcs=_HEALTHY_WHMCS,
    salesforce=_HEALTHY_SALESFORCE,
    daily_used=5000,
    daily_limit=15000,
    database_service="ok",
    whmcs_service="ok",
    salesforce_service="ok",
    catalog_status="ok",
    cache_hits_per_fetch=19,
    cache_misses_per_fetch=1,
    active_connections=40,
    max_connections=200,
    eventloop_lag_s=0.002,
)

_r = dataclasses.replace

SPECS: Final[dict[str, ScenarioSpec]] = {
    "healthy": HEALTHY,
    "degraded": _r(
        HEALTHY,
        name="degraded",
        summary="warnings everywhere, nothing critical: cache failing, queues slow",
        cache="fail",
        whmcs=_r(
            _HEALTHY_WHMCS,
            health="degraded",
            queue_sizes=(12,),
            pending=6,
            average_wait_ms=900,
            average_execution_ms=1400,
            completed_per_fetch=9,
            failed_per_fetch=8,
            failed_every=1,
        ),
        salesforce=_r(
            _HEALTHY_SALESFORCE,
            health="degraded",
            queue_sizes=(3,),
            pending=3,
            average_wait_ms=400,
            average_execution_ms=1800,
        ),
        whmcs_service="degraded",
        salesforce_service="degraded",
        catalog_status="degraded",
        cache_hits_per_fetch=15,
        cache_misses_per_fetch=5,
        active_connections=170,
        eventloop_lag_s=0.08,
    ),
    "whmcs-backlog": _r(
        HEALTHY,
        name="whmcs-backlog",
        summary="WHMCS queue backed up (57 queued) and failing 25 requests per fetch",
        whmcs=_r(
            _HEALTHY_WHMCS,
            health="unhealthy",
            queue_sizes=(57,),
            pending=10,
            average_wait_ms=12500,
            average_execution_ms=4200,
            completed_per_fetch=3,
            failed_per_fetch=25,
            failed_every=1,
        ),
        whmcs_service="degraded",
    ),
    "salesforce-quota": _r(
        HEALTHY,
        name="salesforce-quota",
        summary="Salesforce daily API usage at 14500/15000 (96.7%)",
        salesforce=_r(_HEALTHY_SALESFORCE, health="degraded"),
        daily_used=14500,
        salesforce_service="degraded",
    ),
    "slow": _r(
        HEALTHY,
        name="slow",
        summary="healthy data, every response delayed by slow_delay_s",
        mode="slow",
        eventloop_lag_s=0.3,
    ),
    "errors": _r(
        HEALTHY,
        name="errors",
        summary="/health 503, other health endpoints 500, WHMCS integration failing",
        mode="errors",
        database="fail",
        whmcs=_r(
            _HEALTHY_WHMCS,
            health="unhealthy",
            completed_per_fetch=2,
            failed_per_fetch=25,
            failed_every=1,
        ),
        whmcs_service="failing",
        active_connections=195,
    ),
    "down": _r(
        HEALTHY,
        name="down",
        summary="connections reset without a response",
        mode="down",
    ),
    "malformed": _r(
        HEALTHY,
        name="malformed",
        summary="200 responses whose bodies are HTML, the wrong shape or truncated",
        mode="malformed",
    ),
}


def validate_scenario(name: object) -> str:
    """Return ``name`` if it is a known scenario, else raise a one-line `ConfigError`."""
    if isinstance(name, str) and name in SPECS:
        return name
    raise ConfigError(f"unknown sandbox scenario {name!r}: choose one of {', '.join(SCENARIOS)}")
