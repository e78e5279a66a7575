"""The CloudWatch exporter: its data, CloudWatch's limits, and delivery to moto's server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from synthetic.errors import ExportError
from synthetic.exporters.cloudwatch import (
    metric_data,
    metric_name,
    put,
    validate,
)
from synthetic.results import CheckResult, RunResult, Severity
from tests.support.catalogue_runs import portal_environment
from tests.support.moto_server import MotoServer, cloudwatch_client, start_moto_or_fail

# The Customer Portal's names (this repository's config): the guide's.
PORTAL = portal_environment().exporters.cloudwatch_names

NOW = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)


def check(metric: str, value: Any, **fields: Any) -> CheckResult:
    fields.setdefault("severity", Severity.OK)
    fields.setdefault("id", f"check_{metric}")
    return CheckResult(metric=metric, reason="", value=value, **fields)


def run_of(*checks: CheckResult, finished_at: str | None = None) -> RunResult:
    """A run in production that finished ``finished_at`` (by default just now)."""
    finished = finished_at or datetime.now(UTC).isoformat(timespec="milliseconds")
    return RunResult(
        run_id="r1",
        environment="production",
        target=None,
        started_at=finished,
        finished_at=finished,
        checks=checks,
    )


RUN = run_of(
    check("whmcs.queue_size", 57, unit="requests", severity=Severity.WARNING),
    check("app.response_time_p95", 812.5, unit="ms"),
    check("db.connection_pool_usage", 42.0, unit="%"),
    check("health.status", "degraded", severity=Severity.WARNING),
    check("health.check", "ok", labels={"name": "database"}),
    check("endpoint.status", "HTTP 503", severity=Severity.CRITICAL),
    check("redis.latency", None, unit="ms", severity=Severity.UNKNOWN),
    check("bullmq.waiting", 3, unit="jobs", labels={"queue": "email"}),
    check("cache.hit_rate", 90, unit="%", severity=Severity.SKIPPED),
)


def request(*data: dict[str, Any], namespace: str = "CustomerPortal") -> dict[str, Any]:
    return {"Namespace": namespace, "MetricData": list(data)}


def datum(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "MetricName": "WhmcsQueueDepth",
        "Dimensions": [{"Name": "Environment", "Value": "production"}],
        "Value": 57.0,
        "Unit": "Count",
        "Timestamp": NOW,
    }
    base.update(fields)
    return base


# -- metric_data --------------------------------------------------------------


def test_metric_data_uses_the_guide_names_units_and_environment() -> None:
    data = metric_data(RUN, now=NOW, names=PORTAL)
    values = {d["MetricName"]: d for d in data if d["MetricName"] != "CheckSeverity"}

    assert values["WhmcsQueueDepth"] == {
        "MetricName": "WhmcsQueueDepth",
        "Dimensions": [{"Name": "Environment", "Value": "production"}],
        "Value": 57.0,
        "Unit": "Count",
        "Timestamp": NOW,
    }
    assert values["ResponseTimeP95"]["Unit"] == "Milliseconds"
    assert values["ResponseTimeP95"]["Value"] == 812.5
    assert values["DbConnectionPoolUsage"]["Unit"] == "Percent"
    assert values["BullmqWaiting"]["Dimensions"] == [
        {"Name": "Environment", "Value": "production"},
        {"Name": "queue", "Value": "email"},
    ]


def test_health_status_is_one_when_ok_else_zero() -> None:
    health = [
        d for d in metric_data(RUN, now=NOW, names=PORTAL) if d["MetricName"] == "HealthStatus"
    ]

    assert [(d["Value"], d["Dimensions"][1:]) for d in health] == [
        (0.0, []),  # health.status "degraded"
        (1.0, [{"Name": "name", "Value": "database"}]),  # health.check database "ok"
    ]


def test_non_numeric_and_skipped_values_give_only_a_severity() -> None:
    data = metric_data(RUN, now=NOW, names=PORTAL)
    names = [d["MetricName"] for d in data]

    assert "EndpointStatus" not in names  # "HTTP 503" is text
    assert "RedisLatency" not in names  # None: could not measure
    assert "CacheHitRate" not in names  # skipped
    assert all(isinstance(d["Value"], float) for d in data)
    severities = {
        next(x["Value"] for x in d["Dimensions"] if x["Name"] == "Metric"): d["Value"]
        for d in data
        if d["MetricName"] == "CheckSeverity"
    }
    assert severities == {
        "whmcs.queue_size": 1.0,
        "app.response_time_p95": 0.0,
        "db.connection_pool_usage": 0.0,
        "health.status": 1.0,
        "health.check": 0.0,
        "endpoint.status": 2.0,
        "redis.latency": 3.0,
        "bullmq.waiting": 0.0,
    }


def test_nan_values_are_left_out_rather_than_refused() -> None:
    data = metric_data(run_of(check("db.size", float("nan"), unit="%")), now=NOW)

    assert [d["MetricName"] for d in data] == ["CheckSeverity"]


def test_timestamp_defaults_to_when_the_run_finished() -> None:
    run = run_of(check("x", "text"), finished_at="2025-12-01T12:00:00.000Z")
    (severity,) = metric_data(run)

    assert severity["Timestamp"] == datetime(2025, 12, 1, 12, 0, tzinfo=UTC)


def test_metric_names() -> None:
    # The portal's config names the guide's metrics; the rest are CamelCase ids.
    assert metric_name("whmcs.queue_size", PORTAL) == "WhmcsQueueDepth"
    assert metric_name("salesforce.queue_size", PORTAL) == "SalesforceQueueDepth"
    assert metric_name("db.dead_tuples", PORTAL) == "DbDeadTuples"
    assert metric_name("salesforce.daily_api_usage", PORTAL) == "SalesforceDailyApiUsage"
    # The framework alone names nothing after the portal.
    assert metric_name("whmcs.queue_size") == "WhmcsQueueSize"


# -- validate: CloudWatch's limits, which moto does not enforce ---------------


def test_validate_accepts_the_data_of_a_run() -> None:
    validate(request(*metric_data(RUN, now=NOW, names=PORTAL)), now=NOW)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (request(*[datum()] * 1001), "at most 1000 metrics per request, got 1001"),
        (
            request(datum(Dimensions=[{"Name": f"d{i}", "Value": "v"} for i in range(31)])),
            "#0 'WhmcsQueueDepth': 31 dimensions, at most 30 allowed",
        ),
        (request(datum(), namespace="AWS/EC2"), "must be ASCII and not start with 'AWS/'"),
        (request(datum(), namespace=""), "namespace '' must have 1-255 characters"),
        (request(datum(), namespace="N" * 256), "must have 1-255 characters"),
        (request(datum(MetricName="")), "#0 '': MetricName must have 1-255 characters"),
        (request(datum(MetricName="M" * 256)), "MetricName must have 1-255 characters"),
        (
            request(datum(Dimensions=[{"Name": "", "Value": "v"}])),
            "dimension name '' must have 1-255 characters",
        ),
        (
            request(datum(Dimensions=[{"Name": "queue", "Value": ""}])),
            "dimension 'queue' value '' must have 1-1024 characters",
        ),
        (
            request(datum(Dimensions=[{"Name": "queue", "Value": "q" * 1025}])),
            "dimension 'queue' value 'qqqq",
        ),
        (request(datum(), datum(Value=float("nan"))), "#1 'WhmcsQueueDepth': Value nan is not"),
        (request(datum(Value=float("inf"))), "Value inf is not finite"),
        (request(datum(Value=1e200)), "outside CloudWatch's range"),
        (request(datum(Value="57")), "Value '57' is not a number"),
        (request(datum(Unit="Requests")), "Unit 'Requests' is not a CloudWatch unit"),
        (request(datum(Timestamp=NOW - timedelta(days=15))), "more than two weeks old"),
    ],
)
def test_validate_rejects_each_documented_limit(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ExportError) as caught:
        validate(bad, now=NOW)

    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert len(text) < 300


def test_validate_accepts_the_limits_themselves() -> None:
    thirty = [{"Name": f"d{i}", "Value": "v" * 1024} for i in range(30)]
    validate(
        request(*[datum(MetricName="M" * 255, Dimensions=thirty, Value=0.0)] * 1000),
        now=NOW,
    )


# -- put: to moto's server ----------------------------------------------------


@pytest.fixture(scope="module")
def moto_module() -> Iterator[MotoServer]:
    with start_moto_or_fail() as server:
        yield server


@pytest.fixture
def moto(moto_module: MotoServer) -> MotoServer:
    """The module's moto server, emptied for this test."""
    moto_module.reset()
    return moto_module


@pytest.mark.slow
def test_put_sends_the_guide_metric_to_cloudwatch(moto: MotoServer) -> None:
    client = cloudwatch_client(moto.url)
    now = datetime.now(UTC).replace(microsecond=0)
    run = run_of(check("whmcs.queue_size", 57, unit="requests"), finished_at=now.isoformat())

    assert put(run, namespace="CustomerPortal", client=client, names=PORTAL) == 2

    listed = client.list_metrics(Namespace="CustomerPortal", MetricName="WhmcsQueueDepth")
    assert [m["Dimensions"] for m in listed["Metrics"]] == [
        [{"Name": "Environment", "Value": "production"}]
    ]
    stats = client.get_metric_statistics(
        Namespace="CustomerPortal",
        MetricName="WhmcsQueueDepth",
        Dimensions=[{"Name": "Environment", "Value": "production"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=60,
        Statistics=["Maximum", "SampleCount"],
    )
    (point,) = stats["Datapoints"]
    assert (point["Maximum"], point["SampleCount"], point["Unit"]) == (57.0, 1.0, "Count")


@pytest.mark.slow
def test_put_splits_more_than_1000_metrics_into_requests(moto: MotoServer) -> None:
    client = cloudwatch_client(moto.url)
    sizes: list[int] = []

    def count_call(params: dict[str, Any], **_: Any) -> None:
        sizes.append(len(params["MetricData"]))

    client.meta.events.register("provide-client-params.cloudwatch.PutMetricData", count_call)
    # 1001 checks whose value is text: one severity datum each.
    run = run_of(*(check(f"x.m{i}", "text", id=f"c{i}") for i in range(1001)))

    assert put(run, namespace="SyntheticTest", client=client, names=PORTAL) == 1001

    assert sizes == [1000, 1]
    listed = client.get_paginator("list_metrics").paginate(Namespace="SyntheticTest")
    assert sum(len(page["Metrics"]) for page in listed) == 1001


@pytest.mark.slow
def test_put_validates_every_request_before_sending_any(moto: MotoServer) -> None:
    client = cloudwatch_client(moto.url)
    calls: list[str] = []
    client.meta.events.register(
        "provide-client-params.cloudwatch.PutMetricData", lambda **_: calls.append("call")
    )
    # The 1001st datum, in the second request, has a dimension value too long.
    checks = [check(f"x.m{i}", "text", id=f"c{i}") for i in range(1000)]
    checks.append(check("x.last", "text", labels={"queue": "q" * 1025}))
    run = run_of(*checks)

    with pytest.raises(ExportError, match=r"#0 'CheckSeverity': dimension 'queue' .*2 of 2\)$"):
        put(run, namespace="CustomerPortal", client=client, names=PORTAL)

    assert calls == []


def test_put_to_an_unreachable_endpoint_is_an_export_error(refused_port: int) -> None:
    client = cloudwatch_client(
        f"http://127.0.0.1:{refused_port}",
        connect_timeout=1,
        read_timeout=1,
        retries={"max_attempts": 1, "mode": "standard"},
    )
    run = run_of(check("whmcs.queue_size", 57))

    started = time.monotonic()
    with pytest.raises(ExportError) as caught:
        put(run, namespace="CustomerPortal", client=client, names=PORTAL)

    assert time.monotonic() - started < 5
    text = str(caught.value)
    assert text.startswith("CloudWatch PutMetricData to 'CustomerPortal' failed after 0 of 2")
    assert f"127.0.0.1:{refused_port}" in text
    assert "\n" not in text
