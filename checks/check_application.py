"""Application performance of the BFF: response time and open connections.

- ``app.response_time_p95``: a burst of timed GET requests, its 95th percentile.
- ``app.active_connections``: the BFF's open HTTP connections (a gauge of its
  Prometheus ``/metrics``, chosen by a PromQL-style selector) as a share of
  the configured capacity.
- ``app.error_rate``: the share of requests answered with a 5xx in the last
  hour, from the BFF's Pino logs (``log_files``), as the guide measures it.

The other log-derived metrics (error lines, slow requests, p95 from the
logs) are in check_logs.py; the external dependencies' in check_external.py.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import pytest

from checks.settings import PortalSettings
from synthetic import (
    BFFClient,
    Environment,
    LogReadings,
    Measurement,
    MeasurementError,
    NotConfigured,
    format_series,
    parse_selector,
    select_series,
)

pytestmark = pytest.mark.metric(component="bff", runbook="incident-response")

MAX_CONCURRENCY = 8
"""At most this many requests of the burst are in flight at once."""


def nearest_rank(values: list[float], percentile: float) -> float:
    """The ``percentile`` (0-100] of ``values`` by the nearest-rank method.

    The smallest value such that at least ``percentile`` % of the values are
    less than or equal to it: ``sorted(values)[ceil(p / 100 * n) - 1]``. It is
    always one of the measured values (no interpolation): with 20 samples the
    p95 is the 19th fastest, with 10 or fewer it is the slowest.
    """
    if not values:
        raise ValueError("nearest_rank of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def _timed_get(bff: BFFClient, path: str) -> tuple[str, int, float]:
    """GET ``path`` (not through the snapshot cache): path, status and milliseconds."""
    started = time.perf_counter()
    # A retried 503 would time the backoff; the body is read (and timed), not kept:
    # eight bodies in flight must not cost eight times max_body_bytes.
    response = bff.get(path, retry_statuses=False, keep_body=False)
    elapsed_ms = (time.perf_counter() - started) * 1000
    return path, response.status_code, elapsed_ms


def _burst(bff: BFFClient, paths: tuple[str, ...], size: int) -> list[tuple[str, int, float]]:
    """``size`` timed requests, round robin over ``paths``, at most `MAX_CONCURRENCY` at once.

    The first transport error (refused, reset, timeout after the client's
    retries) stops the burst: no request starts after it, and it propagates:
    the check is unreachable. No thread outlives the burst: the requests under
    way are waited for, each bounded by its deadline (``timeout_s``, retries
    within ``retry_budget_s``).
    """
    failed = threading.Event()

    def timed(path: str) -> tuple[str, int, float] | None:
        if failed.is_set():
            return None  # not sent: the burst has already failed
        try:
            return _timed_get(bff, path)
        except BaseException:
            failed.set()
            raise

    pool = ThreadPoolExecutor(max_workers=min(MAX_CONCURRENCY, size), thread_name_prefix="p95")
    try:
        futures = [pool.submit(timed, paths[i % len(paths)]) for i in range(size)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            error = future.exception() if future in done else None
            if error is not None:
                raise error
        return [result for future in futures if (result := future.result()) is not None]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stats(times: list[float], statuses: Counter[int]) -> dict[str, Any]:
    return {
        "count": len(times),
        "min_ms": round(min(times), 1),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(nearest_rank(times, 95), 1),
        "max_ms": round(max(times), 1),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
    }


# The guide's HighLatency alarm: "p95 ResponseTime > 2000ms, 5 min".
@pytest.mark.metric("app.response_time_p95", unit="ms", priority="P3", sustain="5m")
@pytest.mark.warning("> 2s")
@pytest.mark.critical("> 5s")
def check_response_time_p95(bff: BFFClient, portal: PortalSettings) -> Measurement:
    """95th percentile response time of a burst of GETs over p95_paths (nearest rank).

    ``p95_sample_size`` requests, round robin over ``p95_paths``, each a real
    request (no snapshot cache) with the check's correlation id and the
    environment's timeout, timed with ``time.perf_counter``. A non-2xx answer
    counts its time and shows in the evidence's status counts; a transport
    error makes the check unreachable.
    """
    paths = tuple(portal.p95_paths)
    size = portal.p95_sample_size
    if not paths or size < 1:
        raise MeasurementError("p95_paths and p95_sample_size must name at least one request")
    results = _burst(bff, paths, size)

    times = [elapsed for _, _, elapsed in results]
    statuses = Counter(status for _, status, _ in results)
    per_path: dict[str, Any] = {}
    for path in dict.fromkeys(paths):
        mine = [(status, elapsed) for p, status, elapsed in results if p == path]
        if mine:
            per_path[path] = _stats(
                [elapsed for _, elapsed in mine], Counter(status for status, _ in mine)
            )
    p95 = nearest_rank(times, 95)
    evidence = {
        "method": "nearest-rank",
        "requests": size,
        "concurrency": min(MAX_CONCURRENCY, size),
        "correlation_id": bff.correlation_id,
        "non_2xx": sum(n for code, n in statuses.items() if not 200 <= code < 300),
        "overall": _stats(times, statuses),
        "paths": per_path,
    }
    return Measurement(round(p95, 1), unit="ms", evidence=evidence)


@pytest.mark.metric("app.active_connections", unit="%", priority="P2")
@pytest.mark.warning("> 80%")
@pytest.mark.critical("> 95%")
def check_active_connections(
    http_client: BFFClient, synthetic_env: Environment, portal: PortalSettings
) -> Measurement:
    """Open HTTP connections of the BFF as a share of connection_capacity.

    The series selected by ``connections_metric`` (default
    ``bff_http_active_connections``; PromQL style, e.g.
    ``bff_http_active_connections{server="public"}`` or ``sum(...)``) in the
    Prometheus text at ``metrics_url``, fetched once per process and run; an
    absolute ``metrics_url`` needs no ``base_url``. Skipped when
    ``metrics_url`` or ``connection_capacity`` is not configured.
    """
    metrics_url: str = synthetic_env.require("metrics_url")
    capacity = portal.connection_capacity
    if capacity is None:
        raise NotConfigured("params.connection_capacity", synthetic_env.name)
    selector = parse_selector(portal.connections_metric)
    snapshot = http_client.snapshot(metrics_url)
    if not 200 <= snapshot.status_code < 300:
        raise MeasurementError(f"GET {metrics_url} returned HTTP {snapshot.status_code}")
    found = select_series(
        snapshot.text, selector, source=f"GET {metrics_url}", max_series=synthetic_env.max_series
    )
    connections = selector.aggregate([float(sample.value) for sample in found])
    if connections < 0:
        raise MeasurementError(f"{selector} is negative ({connections:g})")
    evidence: dict[str, Any] = {
        "metric": str(selector),
        "connections": connections,
        "capacity": capacity,
    }
    if selector.aggregation:
        evidence["series"] = {format_series(s.name, s.labels): s.value for s in found[:10]}
    return Measurement(connections / capacity * 100, unit="%", evidence=evidence)


# The guide's "Error rate | Logs | >1% | >5%": requests with statusCode >= 500
# in the last hour (rate_window_minutes), from the log lines, not from probes.
# The guide's Error Rate monitor: "> 5% for 5 minutes".
@pytest.mark.metric("app.error_rate", unit="%", priority="P2", sustain="5m")
@pytest.mark.warning("> 1%")
@pytest.mark.critical("> 5%")
def check_error_rate(log_analysis: LogReadings) -> Measurement:
    """Share of request lines with statusCode >= 500 in the last hour of log_files."""
    return log_analysis.error_rate()
