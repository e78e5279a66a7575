"""Integrations behind the BFF: their health (GET /auth/health-check), the catalog
cache, and, from the BFF's Pino logs, their response times and error rates.

Which log lines are calls to which dependency is configured in the ``logs``
table (``dependencies``, ``calls.dependency_field`` or
``calls.dependency_pattern``); by default a call names its dependency in the
message, as the guide's ``(WHMCS|Salesforce|Freebit)`` grep expects. A
dependency with no calls in the window is skipped: nothing to measure; a
mapped field that no line has is UNKNOWN, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from synthetic import BFFClient, HealthBody, LogReadings, Measurement, NoLogData, dig

pytestmark = pytest.mark.metric(
    component="integrations", runbook="external-dependencies", priority="P2"
)


# One check per entry of `integrations` (default database, whmcs, salesforce).
@pytest.mark.metric("integration.health")
@pytest.mark.warning("== 'degraded'")
@pytest.mark.critical("not in ['ok', 'degraded']")
def check_integration_health(auth_health_body: HealthBody, integration: str) -> Measurement:
    """One integration of /auth/health-check (`services`, terminus's `details`, or the
    configured path): ok, degraded or failing."""
    return auth_health_body.measure(integration)


@pytest.mark.metric("catalog.cache", component="cache", priority="P3")
@pytest.mark.critical("not in ['ok', 'degraded']")
def check_catalog_cache(bff: BFFClient) -> Any:
    """The catalog cache endpoint answers (2xx JSON) with a status of ok or degraded.

    A degraded cache is not a failing endpoint: its hit rate is cache.hit_rate's job.
    """
    return dig(bff.json("/health/catalog/cache"), "status")


def _or_skip(measure: Callable[[], Measurement]) -> Measurement:
    try:
        return measure()
    except NoLogData as exc:
        pytest.skip(str(exc))


# One check per dependency of the `logs` table (the portal's config names whmcs,
# salesforce and freebit, in [tool.synthetic.logs.dependencies]), each with its
# thresholds there: Freebit is slower by nature, the guide gives it 3 s / 10 s.
@pytest.mark.metric("external.response_time_p95", unit="ms", priority="P3")
@pytest.mark.warning("> 2s")
@pytest.mark.critical("> 5s")
def check_external_response_time_p95(log_analysis: LogReadings, dependency: str) -> Measurement:
    """p95 duration of the dependency's calls in the logs' recent window (5 min)."""
    return _or_skip(lambda: log_analysis.response_time_p95(f"dep:{dependency}"))


@pytest.mark.metric("external.error_rate", unit="%")
@pytest.mark.warning("> 1%")
@pytest.mark.critical("> 5%")
def check_external_error_rate(log_analysis: LogReadings) -> Measurement:
    """Failed external calls among all external calls in the last hour of the logs."""
    return _or_skip(log_analysis.external_error_rate)


@pytest.mark.metric("external.error_rate", unit="%")
@pytest.mark.warning("> 1%")
@pytest.mark.critical("> 5%")
def check_dependency_error_rate(log_analysis: LogReadings, dependency: str) -> Measurement:
    """Failed calls to one dependency among its calls in the last hour of the logs."""
    return _or_skip(lambda: log_analysis.external_error_rate(dependency))
