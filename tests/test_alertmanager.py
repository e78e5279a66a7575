"""Delivery to a real Alertmanager: fires, resolves, escalates, expires.

Alertmanager routes to a `WebhookStandIn` with ``send_resolved: true``, so
each test sees both what Alertmanager holds (``GET /api/v2/alerts``) and
what it notifies.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Iterator
from typing import Any

import pytest

from synthetic.alerts.delivery import Deliverer
from synthetic.alerts.model import Alert
from synthetic.alerts.settings import Receiver
from synthetic.redact import Masker
from tests.support.alert_receivers import WebhookStandIn
from tests.support.alertmanager_server import Alertmanager, start_alertmanager_or_fail

pytestmark = pytest.mark.slow


def _iso(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat()


def make(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "dedup_key": "bullmq.waiting@sandbox",
        "action": "trigger",
        "severity": "critical",
        "summary": "1200 jobs waiting (critical when > 1000)",
        "environment": "sandbox",
        "metric": "bullmq.waiting",
        "check_id": "checks/check_queues.py::check_waiting",
        "priority": "P2",
        "runbook": "https://portal.example.com/docs/runbooks/queues",
        "started_at": _iso(time.time() - 60),
        "run_id": "run-1",
        "labels": {"queue": "email"},
        "component": "queues",
    }
    fields.update(changes)
    return Alert(**fields)


@pytest.fixture
def hook() -> Iterator[WebhookStandIn]:
    with WebhookStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def am(hook: WebhookStandIn) -> Iterator[Alertmanager]:
    with start_alertmanager_or_fail(hook.url) as server:
        yield server


@pytest.fixture
def deliverer() -> Iterator[Deliverer]:
    with Deliverer(masker=Masker()) as d:
        yield d


def receiver(am: Alertmanager, ttl_s: float = 900.0) -> Receiver:
    return Receiver(name="am", type="alertmanager", url=am.url + "/", ttl_s=ttl_s, budget_s=5.0)


def notified(hook: WebhookStandIn, status: str, severity: str) -> bool:
    return any(
        alert["status"] == status and alert["labels"]["severity"] == severity
        for document in hook.documents
        for alert in document["alerts"]
    )


def test_trigger_fires_and_resolve_ends_it(
    am: Alertmanager, hook: WebhookStandIn, deliverer: Deliverer
) -> None:
    alert = make()
    now = time.time()
    sent = deliverer.send(receiver(am), alert, now=now)
    assert sent.status == "delivered"
    assert sent.detail.startswith("HTTP 200 in ")

    (active,) = am.alerts()
    assert active["status"]["state"] == "active"
    assert active["labels"]["alertname"] == "bullmq_waiting"
    assert active["labels"]["severity"] == "critical"
    assert active["labels"]["queue"] == "email"
    assert active["annotations"]["runbook_url"] == alert.runbook
    ends = datetime.datetime.fromisoformat(active["endsAt"]).timestamp()
    assert ends == pytest.approx(now + 900, abs=1)  # the ttl: it expires if runs stop
    (document,) = hook.wait_for(lambda docs: notified(hook, "firing", "critical"))
    assert document["status"] == "firing"

    ended = dataclasses.replace(alert, action="resolve", kind="resolve", ended_at=_iso(now))
    assert deliverer.send(receiver(am), ended, now=time.time()).status == "delivered"
    hook.wait_for(lambda docs: notified(hook, "resolved", "critical"))
    assert am.alerts() == []


def test_escalation_leaves_only_the_critical_alert(
    am: Alertmanager, hook: WebhookStandIn, deliverer: Deliverer
) -> None:
    warning = make(severity="warning", summary="700 jobs waiting (warning when > 500)")
    assert deliverer.send(receiver(am), warning, now=time.time()).status == "delivered"
    hook.wait_for(lambda docs: notified(hook, "firing", "warning"))
    assert [a["labels"]["severity"] for a in am.alerts()] == ["warning"]

    escalated = make(kind="escalate", previous_severity="warning", run_id="run-2")
    assert deliverer.send(receiver(am), escalated, now=time.time()).status == "delivered"
    (active,) = am.alerts()
    assert active["labels"]["severity"] == "critical"
    hook.wait_for(
        lambda docs: notified(hook, "firing", "critical") and notified(hook, "resolved", "warning")
    )


def test_a_trigger_that_is_not_sent_again_expires(
    am: Alertmanager, hook: WebhookStandIn, deliverer: Deliverer
) -> None:
    # The runner died: nobody re-sends the trigger, so its endsAt passes.
    assert deliverer.send(receiver(am, ttl_s=1.0), make(), now=time.time()).status == "delivered"
    assert len(am.alerts()) == 1
    hook.wait_for(lambda docs: notified(hook, "resolved", "critical"), timeout_s=5.0)
    assert am.alerts() == []


def test_a_body_alertmanager_cannot_read_is_rejected_once(
    am: Alertmanager, deliverer: Deliverer
) -> None:
    # A webhook document is an object, not the array Alertmanager wants: 400, no retry.
    misconfigured = Receiver(name="am", type="webhook", url=am.url + "/api/v2/alerts")
    rejected = deliverer.send(misconfigured, make(), now=time.time())
    assert rejected.status == "rejected"
    assert rejected.detail.startswith("HTTP 400: ")
    assert rejected.attempts == 1
    assert am.alerts() == []
