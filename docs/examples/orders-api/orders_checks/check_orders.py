"""The Orders API: is it up, is its database quick, is its queue draining."""

from typing import Any

import pytest

from orders_checks.settings import OrdersSettings
from synthetic import BFFClient, Environment, Measurement, dig, dig_number, gauge_value


@pytest.mark.metric("orders.health", component="api", priority="P1")
@pytest.mark.critical("!= 'ok'")
def check_health(healthz: Any) -> str:
    """``status`` of GET /healthz."""
    return str(dig(healthz, "status"))


@pytest.mark.metric("orders.db_latency", unit="ms", component="database", priority="P2")
@pytest.mark.warning("> 100ms")
@pytest.mark.critical("> 250ms")
def check_db_latency(healthz: Any) -> float:
    """The database round trip the API measured, ``db.latencyMs`` of GET /healthz."""
    return dig_number(healthz, "db", "latencyMs")


@pytest.mark.metric("orders.queue_depth", unit="orders", component="queue", priority="P2")
@pytest.mark.warning("> 100")
@pytest.mark.critical("> 1000")
def check_queue_depth(
    http_client: BFFClient, synthetic_env: Environment, settings: OrdersSettings
) -> Measurement:
    """The gauge ``params.queue_metric`` of the API's Prometheus metrics."""
    url = synthetic_env.require("metrics_url")
    depth = gauge_value(http_client.snapshot(url).text, settings.queue_metric, source=url)
    return Measurement(depth, evidence={"metric": settings.queue_metric})
