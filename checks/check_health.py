"""Core health: GET /health and every health endpoint of the monitoring guide."""

from __future__ import annotations

from typing import Any

import pytest

from checks.conftest import HEALTH_ENDPOINTS, dig
from synthetic import BFFClient, Measurement
from synthetic.health import HealthBody
from synthetic.jsonbody import NotJson


# The guide's monitor: "status != ok for 2 minutes".
@pytest.mark.metric(
    "health.status", component="bff", runbook="incident-response", priority="P1", sustain="2m"
)
@pytest.mark.warning("== 'degraded'")
@pytest.mark.critical("not in ['ok', 'degraded']")
def check_health_status(health: Any) -> Measurement:
    """Core system health: ok, or degraded when a check fails."""
    return Measurement(dig(health, "status"), evidence=health)


# One check per entry of `health_checks` (default database, cache), as label `name`.
# The guide's DatabaseDown / CacheDown alarms: "HealthStatus != ok, 1 min".
@pytest.mark.metric(
    "health.check", component="bff", runbook="incident-response", priority="P1", sustain="1m"
)
@pytest.mark.critical("!= 'ok'")
def check_health_entry(health_body: HealthBody, name: str) -> Measurement:
    """One entry of /health (`checks`, terminus's `details`, or the configured path)."""
    return health_body.measure(name)


@pytest.mark.parametrize("path", HEALTH_ENDPOINTS)
@pytest.mark.metric("endpoint.status", component="bff", runbook="incident-response", priority="P1")
@pytest.mark.critical("!= 'ok'")
def check_endpoint(bff: BFFClient, path: str) -> Measurement:
    """Each health endpoint answers HTTP 200 with a JSON body."""
    snapshot = bff.snapshot(path)
    if snapshot.status_code != 200:
        return Measurement(f"HTTP {snapshot.status_code}", evidence=snapshot.text[:2000])
    try:
        snapshot.json()
    except NotJson:  # JSON too large to read is not this: it propagates, CRITICAL
        kind = snapshot.content_type or "no content type"
        return Measurement(f"HTTP 200, body not JSON ({kind})", evidence=snapshot.text[:2000])
    return Measurement("ok", evidence={"elapsed_ms": round(snapshot.elapsed_ms, 1)})
