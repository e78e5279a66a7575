"""Redis, the portal's cache (and BullMQ's store): memory, hit rate, latency, evictions.

The INFO-based checks share one INFO snapshot per process and run
(`redis_info`), so a run sends Redis one INFO, however many checks read it.
A Redis that does not answer makes every check here CRITICAL ``unreachable``.

Runbook: ``database-operations``. Redis is a data store the portal depends
on, and what these alerts call for (raise or fix ``maxmemory``, change the
eviction policy, find the slow or big commands, fail over) is data store
operations work; ``incident-response`` is for the portal's health checks.
Priority P3: degraded performance, by the guide.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any

import pytest

from synthetic import Environment, Measurement, MeasurementError, Samples, rate_since_last_run

if TYPE_CHECKING:
    import redis

pytestmark = pytest.mark.metric(component="cache", runbook="database-operations", priority="P3")

PINGS = 5
"""Timed PINGs per run of redis.latency (after one that warms the connection)."""

MIN_LOOKUPS = 100
"""Default of ``params.cache_hit_rate_min_lookups``: fewer lookups since the previous
run are too few to judge a hit rate (the monitor's own BullMQ reads are ~9 per queue)."""

RESTART_SLACK_S = 5.0
"""Allowance between the monitor's clock and Redis' uptime when detecting a restart."""


@pytest.fixture(scope="session")
def redis_info(redis_client: redis.Redis) -> dict[str, Any]:
    """``INFO`` (its default sections: server, memory, stats, ...), once per process and run."""
    info = redis_client.info()
    if not isinstance(info, dict):
        raise MeasurementError(f"INFO did not parse into fields (got {type(info).__name__})")
    return info


def info_int(info: dict[str, Any], field: str) -> int:
    """An integer field of INFO; a `MeasurementError` naming it when missing or not a number."""
    if field not in info:
        raise MeasurementError(f"INFO has no '{field}'")
    value = info[field]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MeasurementError(f"INFO {field} is not a non-negative integer: {value!r}")
    return value


@pytest.mark.metric("redis.memory", unit="%")
@pytest.mark.warning("> 80%")
@pytest.mark.critical("> 95%")
def check_redis_memory(redis_info: dict[str, Any]) -> Measurement:
    """Redis memory in use as a share of maxmemory (INFO used_memory / maxmemory)."""
    used = info_int(redis_info, "used_memory")
    maxmemory = info_int(redis_info, "maxmemory")
    policy = redis_info.get("maxmemory_policy")
    if maxmemory == 0:
        # No limit: there is no share to report (Redis grows until the host
        # runs out), and that is a deliberate setting, not a failure to measure.
        pytest.skip(f"maxmemory is 0 (no limit): used_memory is {used} B")
    return Measurement(
        used / maxmemory * 100,
        evidence={"used_memory": used, "maxmemory": maxmemory, "maxmemory_policy": policy},
    )


@pytest.mark.metric("cache.hit_rate", unit="%")
@pytest.mark.warning("< 80%")
@pytest.mark.critical("< 60%")
def check_cache_hit_rate(
    redis_info: dict[str, Any], samples: Samples, synthetic_env: Environment
) -> Measurement:
    """Key lookups that hit, since the previous run (INFO keyspace_hits / (hits + misses)).

    Every key lookup on the server counts, the monitor's own included: the
    BullMQ checks' reads (about 9 per queue and run, mostly misses of empty
    states) and BullMQ workers' polling. On a quiet Redis those would be the
    whole window and make a low rate out of nothing, so a window with fewer
    than ``params.cache_hit_rate_min_lookups`` lookups (default 100) is not
    judged: the check is skipped and says how many there were.
    """
    min_lookups = min_lookups_of(synthetic_env)
    hits = info_int(redis_info, "keyspace_hits")
    misses = info_int(redis_info, "keyspace_misses")
    before_hits = samples.previous("keyspace_hits")
    before_misses = samples.previous("keyspace_misses")
    samples.record("keyspace_hits", hits)
    samples.record("keyspace_misses", misses)
    if before_hits is None or before_misses is None:
        pytest.skip(
            f"first run: baseline keyspace_hits={hits}, keyspace_misses={misses} recorded; "
            "measured from the next run"
        )
    # A restart (or CONFIG RESETSTAT) zeroes both counters: then what they
    # count now is all that happened since, as Prometheus' increase() does.
    reset = (
        hits < before_hits.value
        or misses < before_misses.value
        or restarted_since(redis_info, before_hits.at)
    )
    hits_delta = hits if reset else hits - int(before_hits.value)
    misses_delta = misses if reset else misses - int(before_misses.value)
    lookups = hits_delta + misses_delta
    if lookups == 0:
        # 0/0 is no rate: an idle cache is not a failing one, and an invented
        # 100% would show in trends as a measurement it never was.
        pytest.skip("no cache lookups since the previous run (keyspace hits and misses unchanged)")
    if lookups < min_lookups:
        pytest.skip(
            f"only {lookups} cache lookups since the previous run "
            f"({hits_delta} hits, {misses_delta} misses): too few to judge "
            f"(cache_hit_rate_min_lookups = {min_lookups})"
        )
    return Measurement(
        hits_delta / lookups * 100,
        evidence={
            "keyspace_hits": hits,
            "keyspace_misses": misses,
            "hits_since_previous_run": hits_delta,
            "misses_since_previous_run": misses_delta,
            "counters_reset": reset,
        },
    )


def min_lookups_of(environment: Environment) -> int:
    """``params.cache_hit_rate_min_lookups`` of the environment, or `MIN_LOOKUPS`."""
    value = environment.params.get("cache_hit_rate_min_lookups", MIN_LOOKUPS)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MeasurementError(
            f"params.cache_hit_rate_min_lookups must be a non-negative integer, not {value!r}"
        )
    return value


def restarted_since(info: dict[str, Any], since: float) -> bool:
    """Redis has been up for less time than has passed since ``since`` (epoch seconds)."""
    uptime = info.get("uptime_in_seconds")
    if not isinstance(uptime, int) or isinstance(uptime, bool):
        return False
    return uptime + RESTART_SLACK_S < time.time() - since


@pytest.mark.metric("redis.latency", unit="ms")
@pytest.mark.warning("> 10ms")
@pytest.mark.critical("> 50ms")
def check_redis_latency(redis_client: redis.Redis) -> Measurement:
    """Median PING round trip on a warm connection (one PING to connect, then five timed)."""
    redis_client.ping()  # connects (and authenticates) if needed: not part of the latency
    round_trips_ms: list[float] = []
    for _ in range(PINGS):
        started = time.perf_counter()
        redis_client.ping()
        round_trips_ms.append((time.perf_counter() - started) * 1000)
    # The median: one stall of the monitoring host (GC, CPU steal) moves the
    # max but not the typical round trip; a slow Redis slows most PINGs.
    return Measurement(
        statistics.median(round_trips_ms),
        unit="ms",
        evidence={
            "statistic": "median",
            "round_trips_ms": [round(ms, 3) for ms in round_trips_ms],
            "max_ms": round(max(round_trips_ms), 3),
        },
    )


@pytest.mark.metric("redis.evictions", unit="/min")
@pytest.mark.warning("> 0")
@pytest.mark.critical("> 100/min")
def check_redis_evictions(redis_info: dict[str, Any], samples: Samples) -> Measurement:
    """Keys evicted for memory per minute since the previous run (INFO evicted_keys).
    The critical rate is configurable per environment: ``evictions_critical_per_min``."""
    evicted = info_int(redis_info, "evicted_keys")
    rate = rate_since_last_run(samples, "evicted_keys", evicted)
    return Measurement(
        rate,
        evidence={
            "evicted_keys": evicted,
            "maxmemory_policy": redis_info.get("maxmemory_policy"),
        },
    )
