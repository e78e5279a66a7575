"""The BullMQ checks of checks/check_queues.py against real BullMQ queues: jobs made by
the `bullmq` PyPI package (the real client) and by Node BullMQ (tests/node/bullmq_jobs.js,
every state, compared with BullMQ's own getJobCounts) in a real redis-server, counted by
`synthetic.measure.bullmq.job_counts`; queues that do not exist; and `seed_bullmq`, the
demo's queues.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from bullmq import Queue, Worker
from hypothesis import given
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

from synthetic import MeasurementError
from synthetic.measure.bullmq import QueueListing, find_queues, job_counts, missing_queue
from synthetic.sandbox.redis_server import seed_bullmq
from tests.support.catalogue_runs import client_for, run_checks, write_config
from tests.support.node_apps import node_program
from tests.support.servers import start_redis_or_fail

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
    queues = [*WAITING_CASES, *FAILED_CASES]
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


def command_calls(url: str, config: Path, pytester: pytest.Pytester) -> dict[str, int]:
    """Redis commands (LLEN, ZCARD, HGET, EXISTS, SCAN) a run of the BullMQ checks sent."""
    names = ("llen", "zcard", "hget", "exists", "scan")
    with client_for(url) as client:
        before = client.info("commandstats")
        run_bullmq(pytester, config)
        after = client.info("commandstats")
    return {
        name: after.get(f"cmdstat_{name}", {"calls": 0})["calls"]
        - before.get(f"cmdstat_{name}", {"calls": 0})["calls"]
        for name in names
    }


@pytest.mark.slow
def test_one_read_per_queue_and_run(pytester: pytest.Pytester, bullmq_redis: str) -> None:
    async def make() -> None:
        await add_jobs(bullmq_redis, "a", 1)
        await add_jobs(bullmq_redis, "b", 2)

    asyncio.run(make())
    config = write_config(pytester, bullmq_redis, bullmq_queues=["a", "b"])
    # Two checks per queue share one pipeline: 3 LLEN, 5 ZCARD, 1 HGET, 1 EXISTS per
    # queue; no scan when the queues exist.
    calls = command_calls(bullmq_redis, config, pytester)
    assert calls == {"llen": 6, "zcard": 10, "hget": 2, "exists": 2, "scan": 0}

    # Two missing queues share one listing: a single SCAN (the keyspace is small).
    config = write_config(pytester, bullmq_redis, bullmq_queues=["a", "x", "y"])
    calls = command_calls(bullmq_redis, config, pytester)
    assert calls == {"llen": 9, "zcard": 15, "hget": 3, "exists": 3, "scan": 1}


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
        assert "params.bullmq_queues is not configured for environment 'test'" in result["reason"]

    results = run_bullmq(pytester, write_config(pytester, None, bullmq_queues=["email"]))
    assert len(results) == 2
    for result in results.values():
        assert result["severity"] == "skipped"
        assert "redis_url is not configured for environment 'test'" in result["reason"]


# -- Node BullMQ: jobs in every state, compared with its own getJobCounts ----------------------

# Made by tests/node/bullmq_jobs.js. "children": flows whose parent waits in waiting-children
# and whose child waits in the same queue; "active": jobs a live Worker holds.
NODE_QUEUES: dict[str, dict[str, Any]] = {
    "email": {
        "waiting": 6,
        "prioritized": 7,
        "delayed": 4,
        "active": 2,
        "completed": 5,
        "failed": 3,
        "children": 2,
    },
    "reports": {
        "waiting": 4,
        "prioritized": 1,
        "delayed": 1,
        "active": 1,
        "completed": 2,
        "failed": 21,
        "children": 1,
        "paused": True,
    },
}
# getJobCounts() of BullMQ 6 and what job_counts calls each state.
NODE_STATES = {
    "waiting": "wait",
    "prioritized": "prioritized",
    "delayed": "delayed",
    "active": "active",
    "completed": "completed",
    "failed": "failed",
    "waiting-children": "waiting-children",
}


def severity(value: int, warning: int, critical: int) -> str:
    """The catalogue's "> warning" / "> critical" levels, computed here."""
    return "critical" if value > critical else "warning" if value > warning else "ok"


@pytest.mark.slow
def test_counts_match_node_bullmq_in_every_state(
    pytester: pytest.Pytester, bullmq_redis: str, tmp_path: Path
) -> None:
    spec = json.dumps(NODE_QUEUES)
    log = tmp_path / "bullmq_jobs.log"
    with node_program(
        "bullmq_jobs.js", bullmq_redis, "bull", spec, packages=("bullmq", "ioredis"), log=log
    ) as made:
        # Read while the Worker still holds the active jobs.
        config = write_config(pytester, bullmq_redis, bullmq_queues=list(NODE_QUEUES))
        results = run_bullmq(pytester, config)

    for queue in NODE_QUEUES:
        counts = made["queues"][queue]["counts"]
        legacy_paused = made["queues"][queue]["paused"]  # getJobCounts("paused")
        assert set(counts) == set(NODE_STATES)
        assert all(counts[state] > 0 for state in NODE_STATES), counts  # every state is tested
        # Our "waiting" is BullMQ's waiting (the wait list) + prioritized + the legacy
        # paused list (0 since BullMQ 6, which keeps a paused queue's jobs in wait).
        expected_waiting = counts["waiting"] + counts["prioritized"] + legacy_paused
        waiting, failed = results[f"{WAITING}[{queue}]"], results[f"{FAILED}[{queue}]"]
        assert waiting["value"] == expected_waiting
        assert waiting["severity"] == severity(expected_waiting, 10, 50)
        assert failed["value"] == counts["failed"]
        assert failed["severity"] == severity(counts["failed"], 5, 20)
        evidence = waiting["evidence"]
        assert {ours: evidence[ours] for ours in NODE_STATES.values()} == {
            ours: counts[theirs] for theirs, ours in NODE_STATES.items()
        }
        assert evidence["paused"] == legacy_paused == 0
        assert evidence["is_paused"] is made["queues"][queue]["isPaused"]
    assert made["queues"]["reports"]["isPaused"] is True
    assert {results[f"{WAITING}[{q}]"]["severity"] for q in NODE_QUEUES} == {"warning", "ok"}
    assert results[f"{FAILED}[reports]"]["severity"] == "critical"


@pytest.mark.slow
def test_a_queue_that_does_not_exist_is_unknown_listing_those_that_do(
    pytester: pytest.Pytester, bullmq_redis: str, tmp_path: Path
) -> None:
    spec = json.dumps({"email": {"waiting": 1}, "provisioning": {"failed": 1}, "idle": {}})
    log = tmp_path / "bullmq_jobs.log"
    needs = ("bullmq", "ioredis")
    with node_program("bullmq_jobs.js", bullmq_redis, "bull", spec, packages=needs, log=log):
        pass
    reports = '{"reports": {}}'
    with node_program("bullmq_jobs.js", bullmq_redis, "portal", reports, packages=needs, log=log):
        pass
    queues = ["emails", "idle"]
    results = run_bullmq(pytester, write_config(pytester, bullmq_redis, bullmq_queues=queues))
    # A queue BullMQ made and that never had a job is there (its meta hash): 0 jobs, ok.
    assert (results[f"{WAITING}[idle]"]["value"], results[f"{WAITING}[idle]"]["severity"]) == (
        0,
        "ok",
    )
    for name in (f"{WAITING}[emails]", f"{FAILED}[emails]"):
        assert results[name]["severity"] == "unknown"
        assert results[name]["value"] is None
        assert results[name]["reason"].endswith(
            "no BullMQ queue 'emails' under prefix 'bull' (queues found: email, idle, provisioning)"
        )

    config = write_config(pytester, bullmq_redis, bullmq_queues=["email"], bullmq_prefix="bul")
    results = run_bullmq(pytester, config)
    for result in results.values():
        assert result["severity"] == "unknown"
        assert result["reason"].endswith(
            "no BullMQ queue 'email' under prefix 'bul' (no queue under 'bul'; "
            "found under 'bull': email, idle, provisioning; under 'portal': reports)"
        )

    config = write_config(pytester, bullmq_redis, bullmq_queues=["reports"])
    [result, _] = run_bullmq(pytester, config).values()
    assert result["reason"].endswith(  # the prefix holding a queue of that name comes first
        "no BullMQ queue 'reports' under prefix 'bull' (queues found: email, idle, provisioning)"
    )


@pytest.mark.slow
def test_the_listing_is_bounded_and_says_so(bullmq_redis: str) -> None:
    with client_for(bullmq_redis) as client:
        client.mset({f"session:{n}": "x" for n in range(5000)})
        client.set("cache:user:meta", "a string, not a queue's hash")
        for n in range(13):
            client.hset(f"bull:queue{n:02d}:meta", "opts.maxLenEvents", "10000")
        total = client.dbsize()

        complete = find_queues(client)
        assert complete.complete
        assert complete.queues == {"bull": tuple(f"queue{n:02d}" for n in range(13))}
        message = missing_queue("bull", "queue", complete)
        shown = ", ".join(f"queue{n:02d}" for n in range(10))
        assert message == (
            f"no BullMQ queue 'queue' under prefix 'bull' (queues found: {shown} and 3 more)"
        )

        before = client.info("commandstats")["cmdstat_scan"]["calls"]
        cut = find_queues(client, max_keys=300, count=100)
        calls = client.info("commandstats")["cmdstat_scan"]["calls"] - before
    assert calls == math.ceil(300 / 100)
    assert not cut.complete
    assert (cut.examined, cut.total) == (300, total)
    assert set(cut.queues.get("bull", ())) <= set(complete.queues["bull"])
    assert missing_queue("bull", "queue", cut).endswith(
        f"; only about 300 of the database's {total} keys were scanned)"
    )


@pytest.mark.slow
def test_a_listing_that_fails_keeps_the_finding(refused_port: int) -> None:
    no_retries = Retry(NoBackoff(), 0)
    client = redis.Redis(host="127.0.0.1", port=refused_port, retry=no_retries)
    listing = find_queues(client)
    assert listing.error
    assert listing.queues == {}
    message = missing_queue("bull", "email", listing)
    assert message.startswith("no BullMQ queue 'email' under prefix 'bull' (queues could not be")
    assert "\n" not in message


def test_missing_queue_message_without_any_queue() -> None:
    assert missing_queue("bull", "email", QueueListing()) == (
        "no BullMQ queue 'email' under prefix 'bull' (no BullMQ queue found in this Redis database)"
    )
    listing = QueueListing({f"p{n}": ("q",) for n in range(5)})
    assert missing_queue("x", "q", listing) == (
        "no BullMQ queue 'q' under prefix 'x' (no queue under 'x'; found under 'p0': q; "
        "under 'p1': q; under 'p2': q; and 2 more prefixes)"
    )


@given(
    prefix=st.text(min_size=1, max_size=20),
    queue=st.text(min_size=1, max_size=20),
    names=st.dictionaries(
        st.text(min_size=1, max_size=20),
        st.lists(st.text(min_size=1, max_size=20), max_size=30),
        max_size=10,
    ),
)
def test_missing_queue_message_is_one_bounded_line(
    prefix: str, queue: str, names: dict[str, list[str]]
) -> None:
    listing = QueueListing({p: tuple(sorted(set(q))) for p, q in names.items()})
    message = missing_queue(prefix, queue, listing)
    assert len(message.splitlines()) == 1
    # A name is at most 20 characters (202 as repr): 3 prefixes of 10 names each are
    # shown, far less than the 10 x 30 names given.
    assert len(message) < 8000


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
