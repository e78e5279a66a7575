"""One reading of the environment's log backend: its document, or why there is none.

The whole reading (every request, retry and poll) ends within `BUDGET_SHARE`
of the check's time limit, so the check that reads reports the backend's
trouble itself instead of being stopped by pytest-timeout. A failure is kept
in the document (``{"error": ..., "unreachable": true}`` when the backend did
not answer), so every log check of the run reports the same reason.
"""

from __future__ import annotations

import time
from typing import Any

from synthetic.config import Environment
from synthetic.errors import MeasurementError, Unreachable
from synthetic.logs.sources.client import Deadline, JsonClient
from synthetic.logs.sources.document import BackendReadings
from synthetic.logs.sources.settings import LokiSettings, PrometheusSettings

BUDGET_SHARE = 0.75


def read_backend(environment: Environment, *, now_ms: int | None = None) -> dict[str, Any]:
    """The document of `synthetic.logs.sources.document` from ``logs.source``."""
    settings = environment.logs
    at_ms = int(time.time() * 1000) if now_ms is None else now_ms
    deadline = Deadline(environment.check_timeout_s * BUDGET_SHARE)
    try:
        if settings.source == "loki" and settings.loki is not None:
            from synthetic.logs.sources import loki

            auth = settings.loki
            with _client("Loki", auth, environment, deadline) as client:
                return loki.read(settings, settings.loki, client, at_ms=at_ms)
        if settings.source == "prometheus" and settings.prometheus is not None:
            from synthetic.logs.sources import prometheus

            prom = settings.prometheus
            with _client("Prometheus", prom, environment, deadline) as client:
                return prometheus.read(settings, prom, client, at_ms=at_ms)
        if settings.source == "cloudwatch" and settings.cloudwatch is not None:
            from synthetic.logs.sources import cloudwatch

            runner = cloudwatch.Runner(
                cloudwatch.logs_client(
                    settings.cloudwatch,
                    timeout_s=environment.timeout_s,
                    retries=environment.retries,
                ),
                settings.cloudwatch,
                deadline,
            )
            return cloudwatch.read(settings, settings.cloudwatch, runner, at_ms=at_ms)
    except Unreachable as exc:
        return {"error": str(exc), "unreachable": True}
    except MeasurementError as exc:
        return {"error": str(exc)}
    return {"error": f"logs.source {settings.source!r} has no [logs.{settings.source}] table"}


def _client(
    name: str,
    backend: LokiSettings | PrometheusSettings,
    environment: Environment,
    deadline: Deadline,
) -> JsonClient:
    return JsonClient(
        name,
        backend.url,
        deadline=deadline,
        timeout_s=environment.timeout_s,
        retries=environment.retries,
        headers=backend.headers(),
        auth=backend.basic(),
    )


def readings(document: dict[str, Any], environment: Environment) -> BackendReadings:
    """The answers of a document; the reading's failure raised as what it was."""
    if "error" in document:
        if document.get("unreachable"):
            raise Unreachable(str(document["error"]), target="logs")
        raise MeasurementError(str(document["error"]))
    return BackendReadings(document, environment.logs)
