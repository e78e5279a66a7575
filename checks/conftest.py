"""Fixtures the Customer Portal's checks share: snapshots of the BFF's endpoints.

Each endpoint is fetched once per process and run (``BFFClient.snapshot``),
however many checks read it; a connection error is shared the same way, so
every dependent check reports it.
"""

from __future__ import annotations

from typing import Any

import pytest

from synthetic import BFFClient, MeasurementError, Samples
from synthetic.session import run_state

HEALTH_ENDPOINTS = (
    "/health",
    "/health/queues",
    "/health/queues/whmcs",
    "/health/queues/salesforce",
    "/health/catalog/cache",
    "/auth/health-check",
)


def dig(document: Any, *path: str) -> Any:
    """``document[path[0]][path[1]]...``; a `MeasurementError` naming the missing part."""
    current = document
    for depth, key in enumerate(path):
        if not isinstance(current, dict) or key not in current:
            where = ".".join(path[:depth]) or "the body"
            raise MeasurementError(f"{where} has no '{key}'")
        current = current[key]
    return current


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One check per configured BullMQ queue (``bullmq_queues``), as label ``queue``."""
    if "queue" in metafunc.fixturenames:
        environment = run_state(metafunc.config).config.environment
        if environment.bullmq_queues:
            metafunc.parametrize("queue", environment.bullmq_queues)
        else:
            reason = f"bullmq_queues is not configured for environment '{environment.name}'"
            metafunc.parametrize("queue", [pytest.param(None, marks=pytest.mark.skip(reason))])


def increase_since_last_run(samples: Samples, name: str, counter: float) -> float:
    """How much ``counter`` grew since the previous run (resets handled).

    The first run has nothing to compare with: it records the baseline and
    the check is skipped with a reason that says so.
    """
    increase = samples.increase(name, counter)
    if increase is None:
        pytest.skip(f"first run: baseline {name}={counter:g} recorded; measured from the next run")
    return increase


def rate_since_last_run(samples: Samples, name: str, counter: float) -> float:
    """``counter``'s increase per minute since the previous run; baseline on the first."""
    rate = samples.rate(name, counter, per_seconds=60)
    if rate is None:
        pytest.skip(f"first run: baseline {name}={counter:g} recorded; measured from the next run")
    return rate


@pytest.fixture
def health(bff: BFFClient) -> Any:
    """GET /health as JSON. A 503 with a JSON body is an answer, not an error."""
    return bff.snapshot("/health").json()


@pytest.fixture
def queues(bff: BFFClient) -> Any:
    """GET /health/queues as JSON (2xx only)."""
    return bff.json("/health/queues")


@pytest.fixture
def auth_health(bff: BFFClient) -> Any:
    """GET /auth/health-check as JSON (2xx only)."""
    return bff.json("/auth/health-check")
