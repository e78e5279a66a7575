"""The DogStatsD exporter: gauges as datagrams received by a UDP socket on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from synthetic.errors import ExportError
from synthetic.exporters.dogstatsd import Naming, gauges, metric_name, send, severity_metric
from synthetic.results import CheckResult, RunResult, Severity
from tests.support.catalogue_runs import portal_environment

# The Customer Portal's names (this repository's config): the guide's.
PORTAL = Naming.of(portal_environment().exporters)

LOOPBACK = "127.0.0.1"


def check(metric: str, value: Any, **fields: Any) -> CheckResult:
    fields.setdefault("severity", Severity.OK)
    fields.setdefault("id", f"check_{metric}")
    return CheckResult(metric=metric, reason="", value=value, **fields)


def run_of(*checks: CheckResult, environment: str = "production") -> RunResult:
    now = datetime.now(UTC).isoformat()
    return RunResult(
        run_id="r1",
        environment=environment,
        target=None,
        started_at=now,
        finished_at=now,
        checks=checks,
    )


RUN = run_of(
    check("whmcs.queue_size", 57, unit="requests", severity=Severity.WARNING),
    check("whmcs.failed_requests", 0, unit="requests"),
    check("app.response_time_p95", 812.5, unit="ms"),
    check("bullmq.waiting", 3, unit="jobs", labels={"queue": "email"}),
    check("endpoint.status", "HTTP 503", labels={"path": "/health"}, severity=Severity.CRITICAL),
    check("redis.latency", None, unit="ms", severity=Severity.UNKNOWN),
    check("cache.hit_rate", 90, unit="%", severity=Severity.SKIPPED),
)

EXPECTED = [
    "portal.whmcs.queue_depth:57|g|#environment:production",
    "portal.synthetic.severity:1|g|#environment:production,metric:whmcs.queue_size",
    "portal.whmcs.failed_requests:0|g|#environment:production",
    "portal.synthetic.severity:0|g|#environment:production,metric:whmcs.failed_requests",
    "portal.app.response_time_p95:812.5|g|#environment:production",
    "portal.synthetic.severity:0|g|#environment:production,metric:app.response_time_p95",
    "portal.bullmq.waiting:3|g|#environment:production,queue:email",
    "portal.synthetic.severity:0|g|#environment:production,metric:bullmq.waiting,queue:email",
    # endpoint.status is text, redis.latency unmeasured: their severity only.
    "portal.synthetic.severity:2|g|#environment:production,metric:endpoint.status,path:/health",
    "portal.synthetic.severity:3|g|#environment:production,metric:redis.latency",
    # cache.hit_rate was skipped: nothing.
]


@pytest.fixture
def agent() -> Iterator[socket.socket]:
    """A UDP socket on loopback standing in for the DataDog Agent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(2)
        yield sock


def received(sock: socket.socket, count: int) -> list[str]:
    """``count`` datagrams' lines; then check that no more arrive."""
    lines: list[str] = []
    for _ in range(count):
        lines.extend(sock.recv(65_535).decode().splitlines())
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):
        sock.recv(65_535)
    return lines


def test_send_delivers_one_datagram_per_gauge(agent: socket.socket) -> None:
    sent = send(RUN, port=agent.getsockname()[1], naming=PORTAL)

    assert sent == len(EXPECTED)
    assert received(agent, sent) == EXPECTED


def test_extra_tags_follow_the_environment_and_labels(agent: socket.socket) -> None:
    run = run_of(check("bullmq.waiting", 3, labels={"queue": "email"}), environment="staging")

    send(
        run,
        port=agent.getsockname()[1],
        tags=["service:customer-portal-bff", "team:portal"],
        naming=PORTAL,
    )

    assert received(agent, 2) == [
        "portal.bullmq.waiting:3|g|#environment:staging,queue:email,"
        "service:customer-portal-bff,team:portal",
        "portal.synthetic.severity:0|g|#environment:staging,metric:bullmq.waiting,queue:email,"
        "service:customer-portal-bff,team:portal",
    ]


def test_a_run_of_text_values_sends_only_severities(agent: socket.socket) -> None:
    run = run_of(check("endpoint.status", "ok"), check("db.size", float("nan"), unit="%"))

    assert send(run, port=agent.getsockname()[1], naming=PORTAL) == 2

    assert [line.split(":", 1)[0] for line in received(agent, 2)] == [
        "portal.synthetic.severity",
        "portal.synthetic.severity",
    ]


def test_health_status_is_one_when_ok_else_zero() -> None:
    run = run_of(
        check("health.status", "degraded", severity=Severity.WARNING),
        check("health.check", "ok", labels={"name": "cache"}),
    )

    values = [
        (name, value, tags)
        for name, value, tags in gauges(run, naming=PORTAL)
        if "severity" not in name
    ]

    assert values == [
        ("portal.health.status", 0, ["environment:production"]),
        ("portal.health.check", 1, ["environment:production", "name:cache"]),
    ]


def test_metric_names() -> None:
    # The portal's config names the guide's gauges and prefixes the rest.
    assert metric_name("whmcs.queue_size", PORTAL) == "portal.whmcs.queue_depth"
    assert metric_name("whmcs.failed_requests", PORTAL) == "portal.whmcs.failed_requests"
    assert metric_name("salesforce.queue_size", PORTAL) == "portal.salesforce.queue_depth"
    assert metric_name("db.dead_tuples", PORTAL) == "portal.db.dead_tuples"
    assert severity_metric(PORTAL) == "portal.synthetic.severity"
    # The framework alone names nothing after the portal: a metric is its id.
    assert metric_name("whmcs.queue_size") == "whmcs.queue_size"
    assert severity_metric() == "synthetic.severity"


def test_a_refused_port_is_an_export_error() -> None:
    # A UDP port nothing listens on: loopback answers "port unreachable", and
    # the next send on the connected socket fails with "connection refused".
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]

    with pytest.raises(ExportError) as caught:
        send(RUN, port=port, naming=PORTAL)

    text = str(caught.value)
    assert text.startswith(f"DogStatsD at 127.0.0.1:{port}: sending portal.synthetic.severity ")
    assert "failed after 1 gauges were sent" in text
    assert "\n" not in text
