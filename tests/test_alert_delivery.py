"""Delivery: rendering, retries, budgets and masking against real loopback servers."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import time
from collections.abc import Iterator
from email import message_from_string, policy
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from synthetic.alerts import delivery
from synthetic.alerts.delivery import Deliverer, DeliveryResult
from synthetic.alerts.model import Alert
from synthetic.alerts.payloads import Rendered, email, pagerduty, render, slack, webhook
from synthetic.alerts.settings import Receiver
from synthetic.redact import Masker
from synthetic.sandbox.processes import LOOPBACK, free_port
from tests.support.alert_receivers import (
    Answer,
    Fault,
    Mailbox,
    PagerDutyStandIn,
    SlackStandIn,
    WebhookStandIn,
    drop,
    make_alert,
    server_error,
    slow,
    smtp_server,
    throttle,
)

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
NOW = datetime.datetime(2025, 1, 2, 3, 10, tzinfo=datetime.UTC).timestamp()


def make(**changes: Any) -> Alert:
    return make_alert(**{"warning": None, "critical": None, "target": None, **changes})


def pagerduty_receiver(url: str, **changes: Any) -> Receiver:
    return Receiver(
        name="pagerduty-oncall", type="pagerduty", url=url, routing_key=ROUTING_KEY, **changes
    )


class FakeTime:
    """A clock that only moves when slept on: retries wait without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def deliverer() -> Iterator[Deliverer]:
    with Deliverer(masker=Masker()) as d:
        yield d


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake_deliverer(fake_time: FakeTime) -> Iterator[Deliverer]:
    with Deliverer(masker=Masker(), sleep=fake_time.sleep, clock=fake_time.clock) as d:
        yield d


# render


def test_render_pagerduty_posts_the_event_with_the_headers() -> None:
    alert = make()
    receiver = pagerduty_receiver("https://events.example/v2/enqueue", headers={"X-Team": "ops"})
    rendered = render(receiver, alert, now=NOW)
    assert rendered == Rendered(
        receiver="pagerduty-oncall",
        type="pagerduty",
        request={
            "method": "POST",
            "url": "https://events.example/v2/enqueue",
            "json": pagerduty.event(alert, routing_key=ROUTING_KEY),
            "headers": {"X-Team": "ops"},
        },
    )
    assert json.loads(json.dumps(rendered.to_json())) == rendered.to_json()


@pytest.mark.parametrize(
    ("kind", "builder"), [("slack", slack.message), ("webhook", webhook.document)]
)
def test_render_slack_and_webhook_post_their_body_to_the_url(kind: Any, builder: Any) -> None:
    alert = make(action="resolve", ended_at="2025-01-02T03:09:00Z")
    receiver = Receiver(name="r", type=kind, url="https://hooks.example/T/B/x")
    request = render(receiver, alert, now=NOW).request
    assert request == {
        "method": "POST",
        "url": "https://hooks.example/T/B/x",
        "json": builder(alert),
    }


def _am_receiver(url: str = "http://am.example:9093/", ttl_s: float | None = 900.0) -> Receiver:
    return Receiver(name="am", type="alertmanager", url=url, ttl_s=ttl_s)


def test_render_alertmanager_trigger_expires_after_the_ttl() -> None:
    request = render(_am_receiver(), make(), now=NOW).request
    assert request["url"] == "http://am.example:9093/api/v2/alerts"
    (posted,) = request["json"]
    assert posted["startsAt"] == "2025-01-02T03:04:05Z"
    assert posted["endsAt"] == "2025-01-02T03:25:00Z"  # NOW + 15 min
    assert posted["labels"]["severity"] == "critical"


def test_render_alertmanager_trigger_without_ttl_has_no_end() -> None:
    (posted,) = render(_am_receiver(ttl_s=None), make(), now=NOW).request["json"]
    assert "endsAt" not in posted


@pytest.mark.parametrize(
    ("ended_at", "ends"),
    [
        ("2025-01-02T03:09:00Z", "2025-01-02T03:09:00Z"),
        (None, "2025-01-02T03:10:00Z"),  # now
        ("2025-01-02T04:00:00Z", "2025-01-02T03:10:00Z"),  # a future end is now
    ],
)
def test_render_alertmanager_resolve_ends_at_its_end_or_now(
    ended_at: str | None, ends: str
) -> None:
    alert = make(action="resolve", kind="resolve", ended_at=ended_at)
    (posted,) = render(_am_receiver(), alert, now=NOW).request["json"]
    assert posted["endsAt"] == ends


def test_render_alertmanager_escalation_also_ends_the_previous_severity() -> None:
    alert = make(kind="escalate", previous_severity="warning")
    old, new = render(_am_receiver(), alert, now=NOW).request["json"]
    assert old["labels"] == {**new["labels"], "severity": "warning"}
    assert new["labels"]["severity"] == "critical"
    assert old["endsAt"] == "2025-01-02T03:10:00Z"  # resolved now
    assert new["endsAt"] == "2025-01-02T03:25:00Z"  # firing for the ttl
    assert old["annotations"]["summary"].startswith("RESOLVED ")


def test_render_alertmanager_escalation_without_previous_severity_is_one_alert() -> None:
    posted = render(_am_receiver(), make(kind="escalate"), now=NOW).request["json"]
    assert [p["labels"]["severity"] for p in posted] == ["critical"]


def _email_receiver(port: int, **changes: Any) -> Receiver:
    fields: dict[str, Any] = {
        "name": "email-team",
        "type": "email",
        "smtp_host": LOOPBACK,
        "smtp_port": port,
        "smtp_tls": "none",
        "email_from": "Synthetic <alerts@example.com>",
        "email_to": ("oncall@example.com", "Team <team@example.com>"),
        "timeout_s": 2.0,
        "budget_s": 2.0,
    }
    fields.update(changes)
    return Receiver(**fields)


def test_render_email_is_the_whole_message() -> None:
    alert = make(severity="info")
    request = render(_email_receiver(2525), alert, now=NOW).request
    assert request["smtp"] == f"{LOOPBACK}:2525"
    assert request["from"] == "Synthetic <alerts@example.com>"
    assert request["to"] == ["oncall@example.com", "Team <team@example.com>"]
    assert request["subject"] == email.subject(alert)
    parsed = message_from_string(request["message"], policy=policy.default)
    assert parsed["Subject"] == email.subject(alert)
    assert parsed["To"] == "oncall@example.com, Team <team@example.com>"
    assert parsed["References"] == parsed["In-Reply-To"]


def test_a_receiver_that_is_not_ready_still_renders() -> None:
    missing = ("routing_key: environment variable PD_KEY is not set",)
    receiver = Receiver(name="pd", type="pagerduty", url="https://e.example", missing=missing)
    assert render(receiver, make(), now=NOW).request["json"]["routing_key"] == ""
    mail = Receiver(name="mail", type="email", missing=("smtp_host is not set",))
    request = render(mail, make(), now=NOW).request
    assert (request["smtp"], request["from"], request["to"]) == (":587", "", [])
    am = Receiver(name="am", type="alertmanager", missing=("url is not set",))
    assert render(am, make(), now=NOW).request["url"] == "/api/v2/alerts"


# send over HTTP


def test_send_pagerduty_trigger_and_resolve(deliverer: Deliverer) -> None:
    with PagerDutyStandIn(routing_key=ROUTING_KEY) as pd:
        receiver = pagerduty_receiver(pd.url)
        trigger = deliverer.send(receiver, make(), now=NOW)
        resolve = deliverer.send(receiver, make(action="resolve"), now=NOW)
    assert trigger.status == resolve.status == "delivered"
    assert trigger.attempts == 1
    assert trigger.detail.startswith("HTTP 202 in ")
    assert pd.events == [
        pagerduty.event(make(), routing_key=ROUTING_KEY),
        {
            "routing_key": ROUTING_KEY,
            "dedup_key": "health.status@production",
            "event_action": "resolve",
        },
    ]


def test_send_slack_carries_the_receivers_headers(deliverer: Deliverer) -> None:
    with SlackStandIn() as chat:
        receiver = Receiver(name="slack", type="slack", url=chat.url, headers={"X-Team": "ops"})
        result = deliverer.send(receiver, make(severity="warning"), now=NOW)
    assert result == DeliveryResult("delivered", result.detail, 1)
    (request,) = chat.requests
    assert request.headers["x-team"] == "ops"
    assert request.headers["content-type"] == "application/json"
    assert chat.messages == [slack.message(make(severity="warning"))]


def test_send_a_changed_request_instead_of_the_rendered_one(deliverer: Deliverer) -> None:
    with WebhookStandIn() as hook:
        receiver = Receiver("w", "webhook", url=hook.url)
        request = render(receiver, make(), now=NOW).request
        changed = {**request, "json": {**request["json"], "team": "payments"}}
        result = deliverer.send(receiver, make(), now=NOW, request=changed)
    assert result.status == "delivered"
    assert hook.documents == [changed["json"]]


def test_retries_server_errors_then_delivers(
    fake_deliverer: Deliverer, fake_time: FakeTime
) -> None:
    with PagerDutyStandIn() as pd:
        pd.script([server_error(500), server_error(503, "upstream busy")])
        result = fake_deliverer.send(pagerduty_receiver(pd.url), make(), now=NOW)
    assert result.status == "delivered"
    assert result.attempts == 3
    assert result.detail.endswith("after 3 attempts")
    assert [r.status for r in pd.requests] == [500, 503, 202]
    assert len(fake_time.sleeps) == 2
    assert 0 < fake_time.sleeps[0] < fake_time.sleeps[1]  # exponential


@pytest.mark.parametrize(
    "retry_after",
    [
        7,
        # An HTTP date 12 s after the moment of the send.
        formatdate(NOW + 12, usegmt=True),
    ],
)
def test_429_waits_as_long_as_retry_after_says(
    fake_deliverer: Deliverer, fake_time: FakeTime, retry_after: int | str
) -> None:
    with PagerDutyStandIn() as pd:
        pd.script([throttle(retry_after=retry_after)])
        result = fake_deliverer.send(pagerduty_receiver(pd.url), make(), now=NOW)
    assert result.status == "delivered"
    assert result.attempts == 2
    assert fake_time.sleeps == [7.0 if retry_after == 7 else 12.0]


def test_429_whose_retry_after_passes_the_budget_fails_at_once(
    fake_deliverer: Deliverer, fake_time: FakeTime
) -> None:
    with PagerDutyStandIn() as pd:
        pd.script([throttle(retry_after=120)])
        receiver = pagerduty_receiver(pd.url, budget_s=30.0)
        result = fake_deliverer.send(receiver, make(), now=NOW)
    assert result == DeliveryResult(
        "failed", "HTTP 429: retry after 120 s would pass the 30 s budget; 1 attempt in 0.0 s", 1
    )
    assert fake_time.sleeps == []
    assert len(pd.requests) == 1


def test_429_without_retry_after_backs_off(fake_deliverer: Deliverer, fake_time: FakeTime) -> None:
    with SlackStandIn() as chat:
        chat.script([throttle(retry_after=None)])
        result = fake_deliverer.send(Receiver("s", "slack", url=chat.url), make(), now=NOW)
    assert (result.status, result.attempts) == ("delivered", 2)
    assert len(fake_time.sleeps) == 1
    assert 0.25 <= fake_time.sleeps[0] <= 0.5


def test_400_is_rejected_with_the_answer_and_not_retried(deliverer: Deliverer) -> None:
    with PagerDutyStandIn(routing_key="f" * 32) as pd:
        result = deliverer.send(pagerduty_receiver(pd.url), make(), now=NOW)
    assert result.status == "rejected"
    assert result.attempts == 1
    assert result.detail.startswith("HTTP 400: ")
    assert "Invalid routing key" in result.detail
    assert len(pd.requests) == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda body: body.update(blocks=body["blocks"] * 20),  # over 50 blocks
        lambda body: body.update(text=""),  # no fallback
        lambda body: body["blocks"][0]["text"].update(text="h" * 151),
        lambda body: body["blocks"][1]["text"].update(text="s" * 3001),
    ],
)
def test_the_slack_stand_in_refuses_what_slack_refuses(change: Any) -> None:
    body = slack.message(make())
    change(body)
    with SlackStandIn() as chat:
        answer = httpx.post(chat.url, json=body)
        assert httpx.post(chat.url, json=slack.message(make())).text == "ok"
    assert (answer.status_code, answer.text) == (400, "invalid_payload")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"routing_key": "short"}, "Length of 'routing_key' is incorrect"),
        ({"event_action": "page"}, "'event_action' is invalid"),
        ({"dedup_key": "k" * 256}, "'dedup_key' must be a string of at most 255"),
        ({"payload": {"summary": "s" * 1025, "source": "x", "severity": "critical"}}, "1024"),
        ({"payload": {"summary": "s", "source": "x", "severity": "fatal"}}, "severity"),
        ({"payload": {"summary": "s", "severity": "info"}}, "'payload.source' is missing"),
    ],
)
def test_the_pagerduty_stand_in_refuses_what_pagerduty_refuses(
    change: dict[str, Any], error: str
) -> None:
    body = {**pagerduty.event(make(), routing_key=ROUTING_KEY), **change}
    with PagerDutyStandIn() as pd:
        answer = httpx.post(pd.url, json=body)
    assert answer.status_code == 400
    assert answer.json()["message"] == "Event object is invalid"
    assert any(error in e for e in answer.json()["errors"])


def test_a_long_answer_is_cut_to_one_line(deliverer: Deliverer) -> None:
    with WebhookStandIn() as hook:
        hook.script([Fault(Answer(422, "line one\nline two " + "x" * 5000))])
        result = deliverer.send(Receiver("w", "webhook", url=hook.url), make(), now=NOW)
    assert result.status == "rejected"
    assert len(result.detail) <= delivery.MAX_DETAIL
    assert result.detail.startswith("HTTP 422: line one line two xxx")
    assert result.detail.endswith("…")


def test_a_redirect_is_rejected_not_followed(deliverer: Deliverer) -> None:
    with WebhookStandIn() as hook:
        hook.script([Fault(Answer(302, "", {"Location": "http://elsewhere.example/"}))])
        result = deliverer.send(Receiver("w", "webhook", url=hook.url), make(), now=NOW)
    assert result.status == "rejected"
    assert "redirect" in result.detail
    assert len(hook.requests) == 1


def test_dropped_connections_are_retried_until_the_budget_is_spent(
    deliverer: Deliverer,
) -> None:
    with WebhookStandIn() as hook:
        hook.script([drop()] * 20)
        receiver = Receiver("w", "webhook", url=hook.url, budget_s=1.0)
        started = time.monotonic()
        result = deliverer.send(receiver, make(), now=NOW)
        took = time.monotonic() - started
    assert result.status == "failed"
    assert result.attempts >= 2
    assert result.attempts == len(hook.requests)
    assert result.detail.startswith("connection dropped without an answer; ")
    said = re.fullmatch(
        rf".*; {result.attempts} attempts in ([0-9.]+) s, the 1 s budget ran out", result.detail
    )
    assert said is not None, result.detail
    # Its own clock, read inside the call: at most what the test saw around it
    # (each is rounded to a tenth, so they may differ by one).
    assert float(said.group(1)) <= round(took, 1) + 0.05
    assert took <= 1.0 + delivery.MIN_TIMEOUT_S + 0.2


def test_slow_answers_time_out_and_the_budget_bounds_the_send(deliverer: Deliverer) -> None:
    with WebhookStandIn() as hook:
        hook.script([slow(3.0)] * 20)
        receiver = Receiver("w", "webhook", url=hook.url, timeout_s=0.3, budget_s=1.0)
        started = time.monotonic()
        result = deliverer.send(receiver, make(), now=NOW)
        took = time.monotonic() - started
    assert result.status == "failed"
    assert result.attempts >= 2
    # The last attempt waits only for what is left of the budget.
    assert re.fullmatch(
        r"no complete answer within 0\.[1-3] s; \d attempts in [01]\.\d s, the 1 s budget ran out",
        result.detail,
    )
    assert took <= 1.0 + delivery.MIN_TIMEOUT_S + 0.2


def test_connection_refused_fails(deliverer: Deliverer, refused_port: int) -> None:
    # A budget with room for a second attempt after the first backoff (0.25 s
    # plus up to 0.25 s of jitter), even on a loaded machine.
    receiver = Receiver("w", "webhook", url=f"http://{LOOPBACK}:{refused_port}/x", budget_s=2.0)
    result = deliverer.send(receiver, make(), now=NOW)
    assert result.status == "failed"
    assert result.attempts >= 2
    assert result.detail.startswith("connection refused; ")


def test_a_receiver_that_is_not_ready_never_touches_the_network(deliverer: Deliverer) -> None:
    with PagerDutyStandIn() as pd:
        receiver = pagerduty_receiver(
            pd.url, missing=("routing_key: environment variable PD_KEY is not set",)
        )
        result = deliverer.send(receiver, make(), now=NOW)
    assert result == DeliveryResult(
        "failed", "not ready: routing_key: environment variable PD_KEY is not set", 0
    )
    assert pd.requests == []


def test_a_message_that_cannot_be_built_is_rejected(deliverer: Deliverer) -> None:
    receiver = _email_receiver(free_port(), email_to=())
    result = deliverer.send(receiver, make(), now=NOW)
    assert result.status == "rejected"
    assert "at least one recipient" in result.detail
    assert result.attempts == 0


def test_secrets_never_appear_in_the_detail() -> None:
    header_token = "Bearer header-token-1234"
    known = "known-secret-from-config"
    with SlackStandIn() as chat, Deliverer(masker=Masker([known])) as deliverer:
        echo = f"bad {ROUTING_KEY} {chat.url} {chat.path} {header_token} {known} password=hunter2"
        chat.script([Fault(Answer(400, echo)), Fault(Answer(500, echo))])
        receiver = Receiver(
            "s",
            "slack",
            url=chat.url,
            routing_key=ROUTING_KEY,
            headers={"Authorization": header_token},
            budget_s=0.1,
        )
        rejected = deliverer.send(receiver, make(), now=NOW)
        failed = deliverer.send(receiver, make(), now=NOW)
    for result in (rejected, failed):
        assert result.detail.startswith("HTTP ")
        for secret in (ROUTING_KEY, chat.path, "stand-in-webhook-secret", header_token, known):
            assert secret not in result.detail
        assert "hunter2" not in result.detail
        assert "***" in result.detail
    assert rejected.status == "rejected"
    assert failed.status == "failed"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        (formatdate(NOW + 90, usegmt=True), 90.0),
        (formatdate(NOW - 90, usegmt=True), 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_dates(value: str | None, expected: float | None) -> None:
    assert delivery.retry_after(value, now=NOW) == expected


# send over SMTP


def _password_is(password: str) -> Any:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == password.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    return authenticate


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    controller = smtp_server(handler)
    try:
        yield handler, controller.port
    finally:
        controller.stop()


def test_email_is_delivered_with_subject_and_threading_headers(
    deliverer: Deliverer, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    trigger, resolve = make(severity="info"), make(action="resolve", severity="info")
    first = deliverer.send(_email_receiver(port), trigger, now=NOW)
    second = deliverer.send(_email_receiver(port), resolve, now=NOW)
    assert (first.status, first.attempts) == ("delivered", 1)
    assert first.detail.startswith("SMTP accepted in ")
    assert second.status == "delivered"
    assert handler.envelopes[0].mail_from == "alerts@example.com"
    assert handler.envelopes[0].rcpt_tos == ["oncall@example.com", "team@example.com"]
    opened, closed = handler.messages()
    assert opened["Subject"] == email.subject(trigger)
    assert closed["Subject"] == email.subject(resolve)
    assert opened["Message-ID"] != closed["Message-ID"]
    assert opened["References"] == closed["References"] == closed["In-Reply-To"]
    assert "https://portal.example.com/docs/runbooks/health" in opened.get_content()


def test_email_sends_a_changed_request(deliverer: Deliverer, mailbox: tuple[Mailbox, int]) -> None:
    handler, port = mailbox
    receiver = _email_receiver(port)
    request = render(receiver, make(), now=NOW).request
    changed = {
        **request,
        "to": ["Payments <payments@example.com>"],
        "message": request["message"].replace("Subject: ", "Subject: [payments] ", 1),
    }
    result = deliverer.send(receiver, make(), now=NOW, request=changed)
    assert result.status == "delivered"
    assert handler.envelopes[0].rcpt_tos == ["payments@example.com"]
    (mail,) = handler.messages()
    assert str(mail["Subject"]).startswith("[payments] CRITICAL P1 health.status")


def test_email_login_with_the_password(deliverer: Deliverer) -> None:
    handler = Mailbox()
    controller = smtp_server(
        handler, authenticator=_password_is("s3cret-pass"), auth_require_tls=False
    )
    try:
        good = _email_receiver(
            controller.port, smtp_username="synthetic", smtp_password="s3cret-pass"
        )
        bad = dataclasses.replace(good, smtp_password="wrong-pass-1234")
        delivered = deliverer.send(good, make(), now=NOW)
        refused = deliverer.send(bad, make(), now=NOW)
    finally:
        controller.stop()
    assert delivered.status == "delivered"
    assert len(handler.envelopes) == 1
    assert refused.status == "rejected"
    assert refused.detail.startswith("SMTP 535")
    assert "wrong-pass-1234" not in refused.detail


def test_email_refused_for_good_is_rejected(deliverer: Deliverer) -> None:
    handler = Mailbox(rcpt_answer="550 5.1.1 no such user")
    controller = smtp_server(handler)
    try:
        result = deliverer.send(_email_receiver(controller.port), make(), now=NOW)
    finally:
        controller.stop()
    assert result.status == "rejected"
    assert result.attempts == 1
    assert "550" in result.detail
    assert "no such user" in result.detail


def test_email_refused_for_now_is_retried_then_fails(
    fake_deliverer: Deliverer, fake_time: FakeTime
) -> None:
    handler = Mailbox(rcpt_answer="451 4.3.0 try again later")
    controller = smtp_server(handler)
    try:
        result = fake_deliverer.send(_email_receiver(controller.port), make(), now=NOW)
    finally:
        controller.stop()
    assert result.status == "failed"
    assert result.attempts >= 2
    assert "451" in result.detail
    assert handler.envelopes == []
    assert sum(fake_time.sleeps) <= 2.0  # the budget


def test_smtp_connection_refused_fails(deliverer: Deliverer, refused_port: int) -> None:
    # Room for a second attempt after the first backoff (at most 0.5 s).
    result = deliverer.send(_email_receiver(refused_port, budget_s=1.0), make(), now=NOW)
    assert result.status == "failed"
    assert result.attempts >= 2
    assert result.detail.startswith("SMTP connection refused; ")


def test_starttls_that_the_server_lacks_is_rejected(
    deliverer: Deliverer, mailbox: tuple[Mailbox, int]
) -> None:
    handler, port = mailbox
    result = deliverer.send(_email_receiver(port, smtp_tls="starttls"), make(), now=NOW)
    assert result.status == "rejected"
    assert "STARTTLS" in result.detail
    assert handler.envelopes == []


# heartbeat


def test_ping_gets_the_heartbeat_url(deliverer: Deliverer) -> None:
    with WebhookStandIn() as hook:
        result = deliverer.ping(f"{hook.base_url}/ping/5f3c-token-uuid", timeout_s=1.0)
    assert result.status == "delivered"
    assert [(r.method, r.path) for r in hook.requests] == [("GET", "/ping/5f3c-token-uuid")]


def test_ping_retries_a_few_times_and_never_shows_the_url(
    fake_deliverer: Deliverer, fake_time: FakeTime
) -> None:
    with WebhookStandIn() as hook:
        url = f"{hook.base_url}/ping/5f3c-token-uuid"
        hook.script([server_error(503, f"down for {url}")] * 5)
        result = fake_deliverer.ping(url, timeout_s=1.0)
    assert result.status == "failed"
    assert result.attempts == delivery.PING_ATTEMPTS == len(hook.requests)
    assert "5f3c-token-uuid" not in result.detail
    assert result.detail.startswith("HTTP 503: down for ")


def test_ping_that_is_not_found_is_rejected(deliverer: Deliverer) -> None:
    with WebhookStandIn() as hook:
        hook.script([Fault(Answer(404, "no such check"))])
        result = deliverer.ping(f"{hook.base_url}/ping/x", timeout_s=1.0)
    assert (result.status, result.attempts, result.detail) == (
        "rejected",
        1,
        "HTTP 404: no such check",
    )
