"""Hostile receivers: answers that drip, never end, or accept and then hang.

Each is a real server on loopback (`tests.support.alert_receivers`). The bound under
test is the receiver's ``budget_s``: a hard deadline for its whole attempt
chain, answers included, after which the alert waits in the outbox saying
so; and the outbox lease, which outlives that chain, so a second runner
never sends what the first is still sending.
"""

from __future__ import annotations

import re
import resource
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from synthetic.alerts import pipeline
from synthetic.alerts.delivery import Deliverer
from synthetic.alerts.pipeline import AlertReport, Lease
from synthetic.alerts.settings import Receiver
from synthetic.alerts.store import RedisAlertStore, open_alert_store
from synthetic.config import Config, load_config
from synthetic.redact import Masker
from synthetic.results import CheckResult, RunResult, Severity
from tests.support.alert_receivers import (
    Answer,
    DripSMTP,
    Fault,
    PagerDutyStandIn,
    WebhookStandIn,
    drip,
    make_alert,
)

ROUTING_KEY = "0123456789abcdef0123456789abcdef"
NOW = 1_764_000_000.0
# What a deadline may be passed by: a timer thread waking, a socket closing.
SLACK_S = 0.3


@pytest.fixture
def deliverer() -> Iterator[Deliverer]:
    with Deliverer(masker=Masker()) as d:
        yield d


# --- one receiver, one delivery ----------------------------------------------------


@pytest.mark.parametrize(
    ("part", "status"),
    [
        ("status", 202),  # "HTTP/1.1 202 dddd..." never ends its line
        ("headers", 202),  # the status is out, the headers never end
        ("headers", 503),
        ("body", 503),  # an error whose chunked body never ends
    ],
)
@pytest.mark.slow
def test_a_dripping_answer_cannot_outlast_the_budget(
    deliverer: Deliverer, part: str, status: int
) -> None:
    # Catches: a socket timeout taken for a deadline (each byte comes within
    # it, so the answer runs as long as the receiver likes).
    timeout_s, budget_s = 0.6, 1.5
    with WebhookStandIn() as hook:
        hook.script([drip(part, status=status, every_s=0.05, for_s=8.0)] * 10)
        receiver = Receiver("w", "webhook", url=hook.url, timeout_s=timeout_s, budget_s=budget_s)
        started = time.monotonic()
        result = deliverer.send(receiver, make_alert(), now=NOW)
        took = time.monotonic() - started
        hook.wait_for_arrivals(result.attempts)
    requests = hook.requests
    assert took <= budget_s + SLACK_S
    assert result.status == "failed"
    assert result.attempts >= 2  # each attempt ends at timeout_s, then it tries again
    assert re.fullmatch(
        r"no complete answer within 0\.\d s; \d attempts in 1\.\d s, the 1\.5 s budget ran out",
        result.detail,
    ), result.detail
    # The receiver saw each attempt hang up on it in time.
    assert len(requests) == result.attempts
    assert all(r.lasted_s <= timeout_s + SLACK_S for r in requests)


def test_an_accepting_status_line_is_delivered_without_waiting_for_its_body(
    deliverer: Deliverer,
) -> None:
    # A 202 whose body drips: the receiver has accepted the alert; waiting
    # for the body would only turn a delivery into a duplicate.
    with PagerDutyStandIn() as pd:
        pd.script([drip("body", status=202, every_s=0.05, for_s=8.0)])
        receiver = Receiver(
            "pd", "pagerduty", url=pd.url, routing_key=ROUTING_KEY, timeout_s=1.0, budget_s=2.0
        )
        started = time.monotonic()
        result = deliverer.send(receiver, make_alert(), now=NOW)
        took = time.monotonic() - started
    assert (result.status, result.attempts) == ("delivered", 1)
    assert took < 1.0  # not the attempt's timeout: the status line was enough
    assert [r.status for r in pd.requests] == [202]


def gzip_bomb(megabytes: int) -> bytes:
    """A gzip body of ``megabytes`` MB of "A" once expanded, built a MB at a time
    (so building it does not raise this process's peak memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    chunk = b"A" * 1_000_000
    return b"".join([*(packer.compress(chunk) for _ in range(megabytes)), packer.flush()])


@pytest.mark.slow
def test_a_gzip_error_body_is_not_expanded(deliverer: Deliverer) -> None:
    # 4 KB of a compressed error body would be megabytes once expanded (this
    # one is 200 MB): the detail names the status and leaves the body out.
    bomb = gzip_bomb(200)
    with WebhookStandIn() as hook:
        answer = Answer(400, bomb, {"Content-Encoding": "gzip"})
        hook.script([Fault(answer)])
        receiver = Receiver("w", "webhook", url=hook.url, budget_s=2.0)
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result = deliverer.send(receiver, make_alert(), now=NOW)
        grew_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grew_kb < 50_000  # far from the 200 MB it expands to
    assert (result.status, result.detail) == ("rejected", "HTTP 400: Bad Request")
    assert hook.requests[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("when", ["greeting", "data"])
@pytest.mark.slow
def test_a_dripping_smtp_server_cannot_outlast_the_budget(deliverer: Deliverer, when: str) -> None:
    # "data": the server has read the mail and drips its answer, so the
    # sender cannot know; the mail waits in the outbox and is sent again
    # later (email has no deduplication; the repeat has the same Message-ID).
    timeout_s, budget_s = 0.6, 1.5
    with DripSMTP(when=when, every_s=0.05, for_s=8.0) as server:
        receiver = Receiver(
            "mail",
            "email",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_tls="none",
            email_from="synthetic@example.com",
            email_to=("ops@example.com",),
            timeout_s=timeout_s,
            budget_s=budget_s,
        )
        started = time.monotonic()
        result = deliverer.send(receiver, make_alert(), now=NOW)
        took = time.monotonic() - started
        deadline = time.monotonic() + 2
        while len(server.lasted_s) < result.attempts and time.monotonic() < deadline:
            time.sleep(0.05)
        lasted, mails = list(server.lasted_s), list(server.mails)
    assert took <= budget_s + SLACK_S
    assert result.status == "failed"
    assert result.attempts >= 2
    assert re.fullmatch(
        r"SMTP: no complete answer within 0\.\d s; \d attempts in 1\.\d s, "
        r"the 1\.5 s budget ran out",
        result.detail,
    ), result.detail
    assert len(lasted) == result.attempts
    assert all(s <= timeout_s + SLACK_S for s in lasted)
    assert len(mails) == (result.attempts if when == "data" else 0)


# --- the lease ------------------------------------------------------------------------


def test_a_lease_shorter_than_the_chain_and_its_record_cannot_be_made() -> None:
    lease = Lease.covering(6.0, 25.0)
    assert lease.seconds == 6.0 + 25.0 + pipeline.LEASE_SLACK_S
    with pytest.raises(ValueError, match="shorter than the 6 s attempt chain"):
        Lease(6.0, 25.0, 30.0)


def write_config(
    tmp_path: Path, environment: str, *, state: str, url: str, **receiver: Any
) -> Config:
    lines = [
        f'default_environment = "{environment}"',
        f'state = "{state}"',
        f"[environments.{environment}]",
        'base_url = "https://portal.example.com"',
        "[alerts]",
        *[f"{k} = {v!r}" for k, v in receiver.pop("alerts", {}).items()],
        "[alerts.receivers.pagerduty-oncall]",
        'type = "pagerduty"',
        f'url = "{url}"',
        f'routing_key = "{ROUTING_KEY}"',
        *[f"{k} = {v!r}" for k, v in receiver.items()],
        "[[alerts.routes]]",
        'receiver = "pagerduty-oncall"',
        'severity = "critical"',
    ]
    path = tmp_path / "synthetic.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return load_config(path=path, environment=environment, environ={})


def breach(environment: str, run_id: str) -> RunResult:
    check = CheckResult(
        id="checks/check_health.py::check_status",
        metric="health.status",
        severity=Severity.CRITICAL,
        reason="status is 'down'",
        value="down",
    )
    stamp = "2025-11-24T16:00:00+00:00"
    return RunResult(
        run_id=run_id,
        environment=environment,
        target="https://portal.example.com",
        started_at=stamp,
        finished_at=stamp,
        checks=(check,),
    )


def process(config: Config, run_id: str, tmp_path: Path, **options: Any) -> AlertReport:
    return pipeline.process(
        breach(config.environment.name, run_id),
        config=config,
        mode="send",
        results_dir=tmp_path / run_id,
        now=NOW,
        **options,
    )


@pytest.mark.slow
def test_a_second_runner_never_sends_what_a_dripping_receiver_holds(
    redis_url: str, tmp_path: Path
) -> None:
    # The case: a dripping receiver held a delivery for 120 s against
    # a budget of 6, past the lease, so another runner could send it too.
    # Catches: a chain that outlasts its budget, and a lease that runs out
    # before the chain and the record of its outcome are over.
    environment = f"prod-{time.monotonic_ns()}"
    budget_s = 1.5
    with PagerDutyStandIn() as pd:
        config = write_config(
            tmp_path,
            environment,
            state=redis_url,
            url=pd.url,
            timeout_s=budget_s,
            budget_s=budget_s,
        )
        pd.script([drip("status", every_s=0.05, for_s=8.0)])
        first: list[AlertReport] = []
        started = time.monotonic()
        runner = threading.Thread(target=lambda: first.append(process(config, "run-a", tmp_path)))
        runner.start()
        try:
            pd.wait_for_arrivals(1)
            # While it drips: the lease covers what is left of the chain and
            # the time to record its outcome.
            store = open_alert_store(redis_url, environment=environment, results_dir=tmp_path)
            assert isinstance(store, RedisAlertStore)
            (entry,) = store.outbox()
            ttl_s = redis.Redis.from_url(redis_url).pttl(store.lease_key(entry.id)) / 1000
            store.close()
            assert ttl_s >= budget_s - (time.monotonic() - started) + config.alerts.record_for_s
            second = process(config, "run-b", tmp_path)
        finally:
            runner.join(timeout=30)
        took = time.monotonic() - started
        assert second.deliveries == []  # held by the first runner
        assert [e.id for e in second.pending] == [entry.id]
        assert took <= budget_s + 1.0  # both runs, the first one's chain cut at its budget
        ((_, result),) = first[0].deliveries
        assert result.status == "failed"
        assert result.detail.endswith(f"the {budget_s:g} s budget ran out")
        assert first[0].pending[0].last_error == result.detail

        later = process(config, "run-c", tmp_path)
    requests = pd.requests  # all of them, now that the stand-in has stopped
    assert [r.status for _, r in later.deliveries] == ["delivered"]
    assert later.pending == []
    assert sorted(r.status or 0 for r in requests) == [0, 202]  # the drip, then the delivery
    assert [r.lasted_s <= budget_s + SLACK_S for r in requests] == [True, True], requests
    assert [e["event_action"] for e in pd.events] == ["trigger"]


@pytest.mark.slow
def test_a_runner_whose_lease_ran_out_before_sending_does_not_send(tmp_path: Path) -> None:
    # A payload hook (or anything between the claim and the request) slower
    # than the lease: another runner takes the entry over and sends it; the
    # first must not send it as well. Catches: a chain started on a lease
    # that is no longer ours.
    environment = "prod"
    with PagerDutyStandIn() as pd:
        config = write_config(
            tmp_path,
            environment,
            state=str(tmp_path / "state.json"),
            url=pd.url,
            budget_s=0.3,
            alerts={"record_for": "0s"},
        )
        lease = Lease.covering(0.3, 0.0)
        hook_entered, second_done = threading.Event(), threading.Event()

        def slow_hook(*_: Any) -> None:
            # Held until the second runner is done (not a fixed sleep: on a
            # loaded machine that one may still be sending when this ends).
            hook_entered.set()
            second_done.wait(30)

        first: list[AlertReport] = []
        runner = threading.Thread(
            target=lambda: first.append(process(config, "run-a", tmp_path, payload_hook=slow_hook))
        )
        runner.start()
        try:
            assert hook_entered.wait(5)
            time.sleep(lease.seconds + 0.1)  # the first runner's lease has run out
            second = process(config, "run-b", tmp_path)
        finally:
            second_done.set()
            runner.join(timeout=30)
    assert [r.status for _, r in second.deliveries] == ["delivered"]
    assert first[0].deliveries == []
    assert first[0].pending == []
    assert [e["event_action"] for e in pd.events] == ["trigger"]
    assert len(pd.requests) == 1
