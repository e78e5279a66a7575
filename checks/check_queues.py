"""Request queues of the BFF (GET /health/queues): WHMCS and Salesforce.

And the portal's BullMQ queues, counted in Redis (one check per ``bullmq_queues`` entry).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from checks.settings import PortalSettings
from synthetic import (
    BFFClient,
    Measurement,
    MeasurementError,
    Samples,
    dig,
    dig_number,
    find_queues,
    increase_since_last_run,
    job_counts,
)

if TYPE_CHECKING:
    import redis

pytestmark = pytest.mark.metric(component="queues", runbook="queue-management", priority="P2")


# The guide's QueueBacklog alarm and Queue Depth monitor: "> 50 for 5 minutes".
@pytest.mark.metric("whmcs.queue_size", unit="requests", sustain="5m")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_whmcs_queue_size(queues: Any) -> Any:
    """Pending WHMCS requests."""
    return dig_number(queues, "whmcs", "metrics", "queueSize")


@pytest.mark.metric("salesforce.queue_size", unit="requests")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_salesforce_queue_size(queues: Any) -> Any:
    """Pending Salesforce requests."""
    return dig_number(queues, "salesforce", "metrics", "queueSize")


def failed_increase(queues: Any, samples: Samples, service: str) -> float:
    """Failed API calls since the previous run (the counter is cumulative)."""
    counter = dig_number(queues, service, "metrics", "failedRequests")
    return increase_since_last_run(samples, "failedRequests", counter)


@pytest.mark.metric("whmcs.failed_requests", unit="requests")
@pytest.mark.warning("> 5")
@pytest.mark.critical("> 20")
def check_whmcs_failed_requests(queues: Any, samples: Samples) -> float:
    """WHMCS API calls that failed since the previous run."""
    return failed_increase(queues, samples, "whmcs")


@pytest.mark.metric("salesforce.failed_requests", unit="requests")
@pytest.mark.warning("> 5")
@pytest.mark.critical("> 20")
def check_salesforce_failed_requests(queues: Any, samples: Samples) -> float:
    """Salesforce API calls that failed since the previous run."""
    return failed_increase(queues, samples, "salesforce")


@pytest.mark.metric("whmcs.health", priority="P1")
@pytest.mark.warning("== 'degraded'")
@pytest.mark.critical("not in ['healthy', 'degraded']")
def check_whmcs_health(bff: BFFClient) -> Any:
    """GET /health/queues/whmcs: healthy, degraded or unhealthy."""
    return dig(bff.json("/health/queues/whmcs"), "health")


@pytest.mark.metric("salesforce.health", priority="P1")
@pytest.mark.warning("== 'degraded'")
@pytest.mark.critical("not in ['healthy', 'degraded']")
def check_salesforce_health(bff: BFFClient) -> Any:
    """GET /health/queues/salesforce: healthy, degraded or unhealthy."""
    return dig(bff.json("/health/queues/salesforce"), "health")


@pytest.mark.metric("salesforce.daily_api_usage", unit="%", runbook="external-dependencies")
@pytest.mark.warning("> 80%")
@pytest.mark.critical("> 95%")
def check_salesforce_daily_api_usage(queues: Any) -> float:
    """Salesforce API calls used today, as a share of the daily limit."""
    used = dig_number(queues, "salesforce", "dailyUsage", "used")
    limit = dig_number(queues, "salesforce", "dailyUsage", "limit")
    if limit <= 0:
        raise MeasurementError(f"dailyUsage is not a usable used/limit pair ({used:g}/{limit:g})")
    return used / limit * 100


# -- BullMQ queues in Redis: one check per configured queue (label ``queue``), read-only ----


@pytest.fixture(scope="session")
def bullmq_counts(
    redis_client: redis.Redis, portal: PortalSettings
) -> Callable[[str], dict[str, int]]:
    """A queue's job counts (`synthetic.measure.bullmq.job_counts`), read once per process and run
    and shared by the queue's checks; an error is shared the same way. A queue that does
    not exist is UNKNOWN, listing the queues found (one bounded scan for all of them)."""
    read: dict[str, dict[str, int] | Exception] = {}
    listing = functools.cache(lambda: find_queues(redis_client))

    def counts(queue: str) -> dict[str, int]:
        if queue not in read:
            try:
                prefix = portal.bullmq_prefix
                read[queue] = job_counts(redis_client, prefix, queue, listing=listing)
            except Exception as exc:
                read[queue] = exc
        found = read[queue]
        if isinstance(found, Exception):
            raise found
        return found

    return counts


@pytest.mark.metric("bullmq.waiting", unit="jobs")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_bullmq_waiting(queue: str, bullmq_counts: Callable[[str], dict[str, int]]) -> Measurement:
    """BullMQ jobs waiting for a worker (wait + paused + prioritized): the job backlog."""
    counts = bullmq_counts(queue)
    return Measurement(counts["waiting"], evidence=counts)


@pytest.mark.metric("bullmq.failed", unit="jobs")
@pytest.mark.warning("> 5")
@pytest.mark.critical("> 20")
def check_bullmq_failed(queue: str, bullmq_counts: Callable[[str], dict[str, int]]) -> Measurement:
    """BullMQ jobs in the failed set (kept until removed or retried): processing failures."""
    counts = bullmq_counts(queue)
    return Measurement(counts["failed"], evidence=counts)
