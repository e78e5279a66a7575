"""The BullMQ checks of checks/check_queues.py against real BullMQ queues: jobs made by
the `bullmq` PyPI package (the real client) in a real redis-server, counted by
`synthetic.bullmq.job_counts`; and `seed_bullmq`, the demo's queues.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bullmq import Queue, Worker

from synthetic import MeasurementError
from synthetic.bullmq import job_counts
from synthetic.sandbox.redis_server import seed_bullmq
from tests.servers import start_redis_or_fail
from tests.test_check_cache import client_for, run_checks, write_config

REPO = Path(__file__).resolve().parent.parent
QUEUE_CHECKS = REPO / "checks" / "check_queues.py"
WAITING, FAILED = "check_bullmq_waiting", "check_bullmq_failed"
STATES = ("wait", "active", "paused", "delayed", "prioritized", "completed", "failed")


def run_bullmq(pytester: pytest.Pytester, config: Path) -> dict[str, dict[str, Any]]:
    """The BullMQ checks only (the BFF checks of the same file need a BFF)."""
    return run_checks(pytester, config, QUEUE_CHECKS, "-k", "bullmq")


# -- making real jobs with the bullmq package ---------------------------------------------------


async def add_jobs(url: str, queue: str, count: int, prefix: str = "bull", **opts: Any) -> None:
    """``count`` jobs added with ``Queue.add`` (``opts``: priority, delay, ...)."""
    client = Queue(queue, {"connection": url, "prefix": prefix})
    try:
        for n in range(count):
            await client.add("send", {"n": n}, dict(opts))
    finally:
        await client.close()


async def fail_jobs(url: str, queue: str, count: int, prefix: str = "bull") -> None:
    """``count`` jobs that a real Worker takes and fails (its processor raises).

    The Worker's own steps (getNextJob: the moveToActive script; processJob: the
    processor, then moveToFailed), driven one job at a time instead of by its run
    loop: closing a running Worker whose loop is blocked in BZPOPMIN hangs now and
    then in bullmq 3.4 (about 1 close in 170 here), and a test must not hang.
    """

    async def processor(job: Any, token: str) -> None:
        raise RuntimeError(f"provisioning failed for job {job.id}")

    await add_jobs(url, queue, count, prefix)
    # A Worker consumes as soon as it exists (unless autorun is off): always close it.
    worker = Worker(queue, processor, {"connection": url, "prefix": prefix, "autorun": False})
    try:
        for n in range(count):
            token = f"{worker.id}:{n}"
            job = await worker.getNextJob(token)
            assert job is not None, f"{queue}: job {n + 1} of {count} was not there"
            await worker.processJob(job, token)
    finally:
        await worker.close()
    with client_for(url) as client:
        assert client.zcard(f"{prefix}:{queue}:failed") == count


async def pause(url: str, queue: str) -> None:
    client = Queue(queue, {"connection": url})
    try:
        await client.pause()
    finally:
        await client.close()


async def bullmq_counts(url: str, queue: str) -> dict[str, int]:
    client = Queue(queue, {"connection": url})
    try:
        counts: dict[str, int] = await client.getJobCounts(*STATES)
        return counts
    finally:
        await client.close()


@pytest.fixture
def bullmq_redis() -> Iterator[str]:
    with start_redis_or_fail() as url:
        yield url


# -- the checks, around the thresholds ----------------------------------------------------------

WAITING_CASES = {"w9": (9, "ok"), "w10": (10, "ok"), "w11": (11, "warning")}
WAITING_CASES |= {"w49": (49, "warning"), "w50": (50, "warning"), "w51": (51, "critical")}
FAILED_CASES = {"f4": (4, "ok"), "f5": (5, "ok"), "f6": (6, "warning")}
FAILED_CASES |= {"f19": (19, "warning"), "f20": (20, "warning"), "f21": (21, "critical")}


@pytest.mark.slow
def test_waiting_and_failed_around_the_thresholds(
    pytester: pytest.Pytester, bullmq_redis: str
) -> None:
    async def make() -> None:
        for queue, (count, _) in WAITING_CASES.items():
            await add_jobs(bullmq_redis, queue, count)
        for queue, (count, _) in FAILED_CASES.items():
            await fail_jobs(bullmq_redis, queue, count)

    asyncio.run(make())
    queues = [*WAITING_CASES, *FAILED_CASES, "never-created"]
    results = run_bullmq(pytester, write_config(pytester, bullmq_redis, bullmq_queues=queues))
    assert len(results) == 2 * len(queues)

    for queue in queues:
        waiting, failed = results[f"{WAITING}[{queue}]"], results[f"{FAILED}[{queue}]"]
        waiting_count, waiting_severity = WAITING_CASES.get(queue, (0, "ok"))
        failed_count, failed_severity = FAILED_CASES.get(queue, (0, "ok"))
        assert (waiting["value"], waiting["severity"]) == (waiting_count, waiting_severity)
        assert (failed["value"], failed["severity"]) == (failed_count, failed_severity)
        for result in (waiting, failed):
            assert result["labels"] == {"queue": queue}
            assert result["unit"] == "jobs"
            assert (result["component"], result["priority"]) == ("queues", "P2")
            assert result["runbook"].endswith("queue-management")
            assert result["evidence"]["wait"] == waiting_count
            assert result["evidence"]["failed"] == failed_count
            assert result["evidence"]["is_paused"] is False
    assert results[f"{WAITING}[w51]"]["reason"] == (
        'bullmq.waiting{queue="w51"} = 51 jobs (critical > 50)'
    )
    assert results[f"{FAILED}[f6]"]["reason"] == 'bullmq.failed{queue="f6"} = 6 jobs (warning > 5)'


@pytest.mark.slow
def test_waiting_counts_prioritized_and_paused_not_delayed(
    pytester: pytest.Pytester, bullmq_redis: str
) -> None:
    async def make() -> None:
        await add_jobs(bullmq_redis, "mixed", 3)
        await add_jobs(bullmq_redis, "mixed", 4, priority=5)
        await add_jobs(bullmq_redis, "mixed", 5, delay=600_000)
        await pause(bullmq_redis, "mixed")

    asyncio.run(make())
    expected = asyncio.run(bullmq_counts(bullmq_redis, "mixed"))
    assert expected["delayed"] == 5
    results = run_bullmq(pytester, write_config(pytester, bullmq_redis, bullmq_queues=["mixed"]))
    waiting = results[f"{WAITING}[mixed]"]
    # BullMQ 6 keeps a paused queue's jobs in wait and sets meta.paused: still backlog.
    assert (waiting["value"], waiting["severity"]) == (7, "ok")
    evidence = waiting["evidence"]
    assert evidence["is_paused"] is True
    assert {state: evidence[state] for state in STATES} == expected
    assert evidence["waiting"] == evidence["wait"] + evidence["prioritized"] + evidence["paused"]


@pytest.mark.slow
def test_custom_prefix(pytester: pytest.Pytester, bullmq_redis: str) -> None:
    async def make() -> None:
        await add_jobs(bullmq_redis, "email", 12, prefix="portal")
        await add_jobs(bullmq_redis, "email", 60)  # under "bull": another application's

    asyncio.run(make())
    config = write_config(pytester, bullmq_redis, bullmq_queues=["email"], bullmq_prefix="portal")
    waiting = run_bullmq(pytester, config)[f"{WAITING}[email]"]
    assert (waiting["value"], waiting["severity"]) == (12, "warning")


@pytest.mark.slow
def test_one_read_per_queue_and_run(pytester: pytest.Pytester, bullmq_redis: str) -> None:
    config = write_config(pytester, bullmq_redis, bullmq_queues=["a", "b"])
    with client_for(bullmq_redis) as client:
        before = client.info("commandstats")
        run_bullmq(pytester, config)
        after = client.info("commandstats")
    # Two checks per queue share one pipeline: 3 LLEN, 5 ZCARD, 1 HGET per queue.
    calls = {
        command: after[f"cmdstat_{command}"]["calls"]
        - before.get(f"cmdstat_{command}", {"calls": 0})["calls"]
        for command in ("llen", "zcard", "hget")
    }
    assert calls == {"llen": 6, "zcard": 10, "hget": 2}


# -- wrong shapes, down, not configured ---------------------------------------------------------


@pytest.mark.slow
def test_a_key_of_the_wrong_type_is_unknown_naming_it(
    pytester: pytest.Pytester, bullmq_redis: str
) -> None:
    with client_for(bullmq_redis) as client:
        client.set("bull:broken:failed", "not a sorted set")
        with pytest.raises(MeasurementError, match="bull:broken:failed: WRONGTYPE"):
            job_counts(client, "bull", "broken")
    results = run_bullmq(pytester, write_config(pytester, bullmq_redis, bullmq_queues=["broken"]))
    for name in (f"{WAITING}[broken]", f"{FAILED}[broken]"):
        assert results[name]["severity"] == "unknown"
        assert "BullMQ key bull:broken:failed: WRONGTYPE" in results[name]["reason"]


@pytest.mark.slow
def test_legacy_paused_list_counts_as_waiting(bullmq_redis: str) -> None:
    # Before BullMQ 6 a paused queue's jobs moved to the `paused` list.
    with client_for(bullmq_redis) as client:
        client.rpush("bull:legacy:paused", "1", "2", "3")
        client.hset("bull:legacy:meta", "paused", "1")
        counts = job_counts(client, "bull", "legacy")
    assert (counts["paused"], counts["waiting"], counts["is_paused"]) == (3, 3, True)


@pytest.mark.slow
def test_refused_connection_is_critical_unreachable(
    pytester: pytest.Pytester, refused_port: int
) -> None:
    url = f"redis://127.0.0.1:{refused_port}/0"
    started = time.monotonic()
    results = run_bullmq(pytester, write_config(pytester, url, bullmq_queues=["email"]))
    assert time.monotonic() - started < 10
    for name in (f"{WAITING}[email]", f"{FAILED}[email]"):
        assert results[name]["severity"] == "critical"
        assert "unreachable" in results[name]["reason"]


@pytest.mark.slow
def test_without_queues_or_redis_the_checks_are_skipped(
    pytester: pytest.Pytester, bullmq_redis: str
) -> None:
    results = run_bullmq(pytester, write_config(pytester, bullmq_redis))
    assert {r["severity"] for r in results.values()} == {"skipped"}
    assert len(results) == 2
    for result in results.values():
        assert "bullmq_queues is not configured for environment 'test'" in result["reason"]

    results = run_bullmq(pytester, write_config(pytester, None, bullmq_queues=["email"]))
    assert len(results) == 2
    for result in results.values():
        assert result["severity"] == "skipped"
        assert "redis_url is not configured for environment 'test'" in result["reason"]


# -- the demo's queues --------------------------------------------------------------------------


@pytest.mark.slow
def test_seeded_queues_are_real_bullmq_queues(pytester: pytest.Pytester, bullmq_redis: str) -> None:
    seeded = seed_bullmq(bullmq_redis, "bull", ["email", "provisioning"], waiting=3, failed=2)
    assert seeded["email"] == {"wait": 3, "failed": 2, "completed": 8}

    async def read() -> tuple[dict[str, int], Any, Any]:
        client = Queue("email", {"connection": bullmq_redis})
        try:
            counts = await client.getJobCounts(*STATES)
            [failed] = await client.getJobs(["failed"], 0, 0)
            [waiting] = await client.getJobs(["wait"], 0, 0)
            return counts, failed, waiting
        finally:
            await client.close()

    counts, failed, waiting = asyncio.run(read())
    assert counts == {**dict.fromkeys(STATES, 0), "wait": 3, "failed": 2, "completed": 8}
    assert failed.failedReason
    assert failed.finishedOn
    assert waiting.name == "send"

    # A second seeding adds jobs with fresh ids, as Queue.add would.
    seed_bullmq(bullmq_redis, "bull", ["email"], waiting=1, failed=0, completed=0)
    with client_for(bullmq_redis) as client:
        assert job_counts(client, "bull", "email")["waiting"] == 4
        assert client.get("bull:email:id") == "14"

    config = write_config(pytester, bullmq_redis, bullmq_queues=["email", "provisioning"])
    results = run_bullmq(pytester, config)
    assert {name: r["value"] for name, r in results.items()} == {
        f"{WAITING}[email]": 4,
        f"{FAILED}[email]": 2,
        f"{WAITING}[provisioning]": 3,
        f"{FAILED}[provisioning]": 2,
    }
    assert {r["severity"] for r in results.values()} == {"ok"}
