"""Fixtures the Customer Portal's checks share: snapshots of the BFF's endpoints.

Each endpoint is fetched once per process and run (``BFFClient.snapshot``),
however many checks read it; a connection error is shared the same way, so
every dependent check reports it.
"""

from __future__ import annotations

from typing import Any

import pytest

from synthetic import BFFClient, MeasurementError

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
