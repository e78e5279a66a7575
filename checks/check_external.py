"""Integrations behind the BFF (GET /auth/health-check) and the catalog cache."""

from __future__ import annotations

from typing import Any

import pytest

from checks.conftest import dig
from synthetic import BFFClient

pytestmark = pytest.mark.metric(
    component="integrations", runbook="external-dependencies", priority="P2"
)


@pytest.mark.parametrize("integration", ["database", "whmcs", "salesforce"])
@pytest.mark.metric("integration.health")
@pytest.mark.warning("== 'degraded'")
@pytest.mark.critical("not in ['ok', 'degraded']")
def check_integration_health(auth_health: Any, integration: str) -> Any:
    """One integration of /auth/health-check: ok, degraded or failing."""
    return dig(auth_health, "services", integration)


@pytest.mark.metric("catalog.cache", component="cache", priority="P3")
@pytest.mark.critical("not in ['ok', 'degraded']")
def check_catalog_cache(bff: BFFClient) -> Any:
    """The catalog cache endpoint answers (2xx JSON) with a status of ok or degraded.

    A degraded cache is not a failing endpoint: its hit rate is cache.hit_rate's job.
    """
    return dig(bff.json("/health/catalog/cache"), "status")
