"""A simulated Customer Portal BFF on loopback, so checks can run against something real.

The sandbox serves the BFF's health endpoints (``/health``, ``/health/queues``,
``/health/queues/whmcs``, ``/health/queues/salesforce``,
``/health/catalog/cache``, ``/auth/health-check``) and ``/metrics`` with the
shapes of the portal's monitoring guide, in one of `SCENARIOS` (see
`synthetic.sandbox.scenarios` for what each one reports)::

    with Sandbox("whmcs-backlog") as sandbox:
        httpx.get(f"{sandbox.url}/health/queues").json()["whmcs"]["metrics"]["queueSize"]  # 57
        sandbox.set_scenario("down")  # the next request gets a connection reset

``GET /__sandbox/scenario`` shows the scenario; ``PUT`` (or ``POST``) it with
``{"scenario": "degraded"}`` to switch. `serve` runs one in the foreground for
the ``synthetic sandbox`` command.
"""

from __future__ import annotations

from synthetic.sandbox.scenarios import SCENARIOS, SPECS, ScenarioSpec
from synthetic.sandbox.server import MAX_RECORDED, Headers, RecordedRequest, Sandbox, serve

__all__ = [
    "MAX_RECORDED",
    "SCENARIOS",
    "SPECS",
    "Headers",
    "RecordedRequest",
    "Sandbox",
    "ScenarioSpec",
    "serve",
]
