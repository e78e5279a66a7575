"""checks/check_cache.py run as a user runs it: pytest on the real check file against
a real redis-server on loopback (memory, hit rate, latency, evictions); and the
`RedisServer` that the tests and ``synthetic demo`` start.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Imported here, not first inside a pytester run: pytester unloads modules first
# imported inside a run, and the plugin recognises redis' connection errors through
# the loaded redis.exceptions module (see test_check_application.py for httpx).
import redis

# The module, not its check_* functions: imported names would be collected as checks.
from checks import check_cache as cache
from synthetic import Environment, MeasurementError, Samples
from synthetic.sandbox.redis_server import RedisServer, RedisServerError, find_redis_server
from tests.support.catalogue_runs import client_for, run_checks, write_config
from tests.support.servers import start_redis_or_fail

REPO = Path(__file__).resolve().parent.parent
CACHE_CHECKS = REPO / "checks" / "check_cache.py"
MEMORY, HIT_RATE = "check_redis_memory", "check_cache_hit_rate"
LATENCY, EVICTIONS = "check_redis_latency", "check_redis_evictions"
REDIS_CHECKS = (MEMORY, HIT_RATE, LATENCY, EVICTIONS)


def age_state(pytester: pytest.Pytester, seconds: float, metric: str) -> None:
    """Pretend the previous run of ``metric`` was ``seconds`` earlier (a scheduler's interval)."""
    path = pytester.path / "out" / "state-test.json"
    state = json.loads(path.read_text())
    entries = [v for k, v in state["samples"].items() if k.startswith(metric)]
    assert entries, f"no samples of {metric} in {sorted(state['samples'])}"
    for entry in entries:
        for sample in entry.values():
            sample["at"] -= seconds
    path.write_text(json.dumps(state))


@pytest.fixture
def plain_redis() -> Iterator[str]:
    """A Redis of this test's own: its counters move only with what the test does."""
    with start_redis_or_fail() as url:
        yield url


# -- reading INFO: wrong shapes are UNKNOWN naming the field ------------------------------------


def test_info_fields_missing_or_not_numbers_name_the_field() -> None:
    with pytest.raises(MeasurementError, match="INFO has no 'maxmemory'"):
        cache.check_redis_memory({"used_memory": 10})
    with pytest.raises(MeasurementError, match="INFO used_memory is not a non-negative integer"):
        cache.info_int({"used_memory": "10M"}, "used_memory")
    with pytest.raises(MeasurementError, match="INFO has no 'evicted_keys'"):
        cache.check_redis_evictions({}, Samples({}))
    with pytest.raises(MeasurementError, match="INFO has no 'keyspace_misses'"):
        cache.check_cache_hit_rate({"keyspace_hits": 1}, Samples({}), Environment(name="t"))


def test_maxmemory_zero_skips_saying_there_is_no_limit() -> None:
    with pytest.raises(pytest.skip.Exception, match=r"maxmemory is 0 \(no limit\)"):
        cache.check_redis_memory({"used_memory": 1_000_000, "maxmemory": 0})


def test_min_lookups_default_and_validation() -> None:
    assert cache.min_lookups_of(Environment(name="t")) == 100
    five = Environment(name="t", params={"cache_hit_rate_min_lookups": 5})
    assert cache.min_lookups_of(five) == 5
    many = Environment(name="t", params={"cache_hit_rate_min_lookups": "many"})
    with pytest.raises(MeasurementError, match="cache_hit_rate_min_lookups"):
        cache.min_lookups_of(many)


# -- RedisServer ------------------------------------------------------------------------------


@pytest.mark.slow
def test_redis_server_runs_with_limits_and_stops_by_pid(tmp_path: Path) -> None:
    assert find_redis_server() is not None
    server = RedisServer(tmp_path, maxmemory="4mb", maxmemory_policy="allkeys-lru")
    with server:
        pid = server.pid
        assert server.url.startswith("redis://127.0.0.1:")
        with client_for(server.url) as client:
            assert client.config_get("maxmemory") == {"maxmemory": str(4 * 1024 * 1024)}
            assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
            assert client.config_get("bind")["bind"] == "127.0.0.1"
            assert client.config_get("save")["save"] == ""
    assert not server.running
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RedisServerError, match="not running"):
        _ = server.url


@pytest.mark.slow
def test_redis_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, maxmemory_policy="no-such-policy")
    with pytest.raises(RedisServerError, match="exited with status"):
        server.start()
    assert not server.running
    missing = RedisServer(tmp_path, executable=str(tmp_path / "nothing-here"))
    with pytest.raises(RedisServerError, match=r"cannot run .*nothing-here: No such file"):
        missing.start()


# -- redis.memory -------------------------------------------------------------------------------


def fill_to(client: redis.Redis, percent: float, maxmemory: int) -> None:
    """Write 4 KB values until used_memory reaches ``percent`` of maxmemory."""
    value = "x" * 4096
    while int(client.info("memory")["used_memory"]) < maxmemory * percent / 100:
        pipe = client.pipeline(transaction=False)
        for _ in range(8):
            pipe.set(f"fill:{time.perf_counter_ns()}", value)
        pipe.execute()


@pytest.mark.slow
def test_memory_around_the_thresholds(pytester: pytest.Pytester) -> None:
    maxmemory = 32 * 1024 * 1024
    # noeviction: nothing leaves, so the share only grows as the test writes.
    with start_redis_or_fail(maxmemory=maxmemory, maxmemory_policy="noeviction") as url:
        config = write_config(pytester, url)
        with client_for(url) as client:
            steps = [(78, "ok"), (82, "warning"), (93, "warning"), (97, "critical")]
            for target, expected in steps:
                fill_to(client, target, maxmemory)
                before = int(client.info("memory")["used_memory"]) / maxmemory * 100
                result = run_checks(pytester, config, CACHE_CHECKS, "-k", MEMORY)[MEMORY]
                after = int(client.info("memory")["used_memory"]) / maxmemory * 100
                assert result["severity"] == expected, result["reason"]
                # INFO moves while we read it (client buffers): within a small tolerance.
                assert before - 0.5 <= result["value"] <= after + 0.5, (before, result, after)
                assert result["unit"] == "%"
                evidence = result["evidence"]
                assert evidence["maxmemory"] == maxmemory
                assert evidence["maxmemory_policy"] == "noeviction"
                assert evidence["used_memory"] / maxmemory * 100 == pytest.approx(result["value"])
                assert result["component"] == "cache"
                assert result["priority"] == "P3"
                assert result["runbook"].endswith("database-operations")


@pytest.mark.slow
def test_memory_without_maxmemory_is_skipped(pytester: pytest.Pytester, plain_redis: str) -> None:
    result = run_checks(pytester, write_config(pytester, plain_redis), CACHE_CHECKS, "-k", MEMORY)
    assert result[MEMORY]["severity"] == "skipped"
    assert "maxmemory is 0 (no limit)" in result[MEMORY]["reason"]


# -- cache.hit_rate -----------------------------------------------------------------------------


def lookups(client: redis.Redis, hits: int, misses: int) -> None:
    """Exactly ``hits`` keyspace hits and ``misses`` misses (GETs of present / absent keys)."""
    pipe = client.pipeline(transaction=False)
    for _ in range(hits):
        pipe.get("present")
    for _ in range(misses):
        pipe.get("absent")
    pipe.execute()


def info_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats").get("cmdstat_info", {"calls": 0})
    return int(stats["calls"])


@pytest.mark.slow
def test_hit_rate_since_the_previous_run(pytester: pytest.Pytester, plain_redis: str) -> None:
    config = write_config(pytester, plain_redis)
    with client_for(plain_redis) as client:
        client.set("present", "1")  # a write: not a lookup
        first = run_checks(pytester, config)
        assert first[HIT_RATE]["severity"] == "skipped"
        assert "baseline" in first[HIT_RATE]["reason"]
        assert "recorded" in first[HIT_RATE]["reason"]

        # The checks' own reads (INFO, PING) are no lookups: only these GETs count.
        cases = [
            (85, 15, 85.0, "ok"),
            (80, 20, 80.0, "ok"),
            (79, 21, 79.0, "warning"),
            (61, 39, 61.0, "warning"),
            (60, 40, 60.0, "warning"),
            (59, 41, 59.0, "critical"),
            (50, 50, 50.0, "critical"),
            (170, 30, 85.0, "ok"),
        ]
        for hits, misses, rate, severity in cases:
            lookups(client, hits, misses)
            calls = info_calls(client)
            result = run_checks(pytester, config)[HIT_RATE]
            # One INFO for the run (all four checks), plus the one just above.
            assert info_calls(client) - calls == 2
            assert result["severity"] == severity, result["reason"]
            assert result["value"] == pytest.approx(rate)
            assert result["evidence"]["hits_since_previous_run"] == hits
            assert result["evidence"]["misses_since_previous_run"] == misses
            assert result["evidence"]["counters_reset"] is False

        idle = run_checks(pytester, config)[HIT_RATE]
        assert idle["severity"] == "skipped"
        assert "no cache lookups since the previous run" in idle["reason"]

        lookups(client, 9, 1)
        sparse = run_checks(pytester, config)[HIT_RATE]
        assert sparse["severity"] == "skipped"
        assert "only 10 cache lookups since the previous run" in sparse["reason"]

        # The threshold of "enough lookups" is the environment's.
        config = write_config(pytester, plain_redis, params={"cache_hit_rate_min_lookups": 5})
        lookups(client, 3, 2)
        judged = run_checks(pytester, config)[HIT_RATE]
        assert (judged["severity"], judged["value"]) == ("warning", pytest.approx(60.0))

        # A reset (restart, CONFIG RESETSTAT): the counters now are the delta.
        client.config_resetstat()
        lookups(client, 50, 50)
        reset = run_checks(pytester, config)[HIT_RATE]
        assert (reset["severity"], reset["value"]) == ("critical", pytest.approx(50.0))
        assert reset["evidence"]["counters_reset"] is True


# -- redis.latency ------------------------------------------------------------------------------


@pytest.mark.slow
def test_latency_on_loopback_is_ok(pytester: pytest.Pytester, plain_redis: str) -> None:
    result = run_checks(pytester, write_config(pytester, plain_redis), CACHE_CHECKS, "-k", LATENCY)
    latency = result[LATENCY]
    assert latency["severity"] == "ok", latency["reason"]
    assert latency["unit"] == "ms"
    assert 0 < latency["value"] < 10
    evidence = latency["evidence"]
    assert evidence["statistic"] == "median"
    assert len(evidence["round_trips_ms"]) == 5
    assert evidence["max_ms"] >= latency["value"] - 0.001


# -- redis.evictions ----------------------------------------------------------------------------


def evict_some(client: redis.Redis) -> int:
    """Write past maxmemory (allkeys-lru) until keys are evicted; how many were."""
    before = int(client.info("stats")["evicted_keys"])
    value = "y" * 16384
    while int(client.info("stats")["evicted_keys"]) - before < 20:
        pipe = client.pipeline(transaction=False)
        for _ in range(16):
            pipe.set(f"evict:{time.perf_counter_ns()}", value)
        pipe.execute()
    return int(client.info("stats")["evicted_keys"]) - before


@pytest.mark.slow
def test_evictions_rate_since_the_previous_run(pytester: pytest.Pytester) -> None:
    with start_redis_or_fail(maxmemory="4mb", maxmemory_policy="allkeys-lru") as url:
        config = write_config(pytester, url)
        with client_for(url) as client:
            first = run_checks(pytester, config, CACHE_CHECKS, "-k", EVICTIONS)[EVICTIONS]
            assert first["severity"] == "skipped"
            assert "baseline evicted_keys=0 recorded" in first["reason"]

            age_state(pytester, 600, "redis.evictions")
            calm = run_checks(pytester, config, CACHE_CHECKS, "-k", EVICTIONS)[EVICTIONS]
            assert (calm["severity"], calm["value"]) == ("ok", 0)

            # A scheduler 10 minutes apart: N evictions are N/10 per minute.
            evicted = evict_some(client)
            age_state(pytester, 600, "redis.evictions")
            some = run_checks(pytester, config, CACHE_CHECKS, "-k", EVICTIONS)[EVICTIONS]
            assert some["severity"] == "warning", some["reason"]
            # Redis may go on evicting after the last write: the run's INFO has the count.
            since = some["evidence"]["evicted_keys"] - calm["evidence"]["evicted_keys"]
            assert since >= evicted
            assert some["value"] == pytest.approx(since / 10, rel=0.01)
            assert some["unit"] == "/min"
            assert some["evidence"]["maxmemory_policy"] == "allkeys-lru"
            assert (some["warning"], some["critical"]) == ("> 0", "> 100/min")

            # The environment's evictions_critical_per_min is the critical rate.
            config = write_config(pytester, url, evictions_critical_per_min=1)
            evict_some(client)
            age_state(pytester, 600, "redis.evictions")
            high = run_checks(pytester, config, CACHE_CHECKS, "-k", EVICTIONS)[EVICTIONS]
            assert high["severity"] == "critical", high["reason"]
            assert high["critical"] == "> 1/min"


# -- not there, not configured ------------------------------------------------------------------


@pytest.mark.slow
def test_refused_connection_is_critical_unreachable_quickly(
    pytester: pytest.Pytester, refused_port: int
) -> None:
    config = write_config(pytester, f"redis://127.0.0.1:{refused_port}/0", timeout_s=2)
    started = time.monotonic()
    results = run_checks(pytester, config)
    assert time.monotonic() - started < 10
    assert set(results) == set(REDIS_CHECKS)
    for name, result in results.items():
        assert result["severity"] == "critical", name
        assert "unreachable" in result["reason"], name


@pytest.mark.slow
def test_without_redis_url_every_check_is_skipped(pytester: pytest.Pytester) -> None:
    results = run_checks(pytester, write_config(pytester, None))
    assert set(results) == set(REDIS_CHECKS)
    for name, result in results.items():
        assert result["severity"] == "skipped", name
        assert "redis_url is not configured for environment 'test'" in result["reason"], name
