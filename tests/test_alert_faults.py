"""The alert pipeline under faults: receivers failing at random, Redis restarting,
runners racing each other, a runner dying mid-delivery.

Everything is real but the clock of the decisions: `pipeline.process` runs
against real stand-in receivers on loopback sockets and a real Redis (or the
file store), and each "run" passes an explicit ``now`` one run interval after
the last. The promise under test is the store's: every incident transition
the decisions produce reaches its receiver, once when every answer arrives
and is recorded, and per receiver in the order it was decided (a trigger
before its resolve), whatever fails; each run is decided once, even when
the answer to its commit is lost; and when the store is away between a
receiver's answer and its record, only that entry is repeated, once.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from email import message_from_string
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from synthetic import cli
from synthetic.alerts import pipeline
from synthetic.alerts.decide import Context, Notice, decide
from synthetic.alerts.payloads import render
from synthetic.alerts.pipeline import AlertReport
from synthetic.alerts.store import empty_document, open_alert_store
from synthetic.config import Config, load_config
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.sandbox.processes import LOOPBACK
from synthetic.sandbox.redis_server import RedisServer
from tests.support.alert_receivers import (
    AlertmanagerStandIn,
    Fault,
    Mailbox,
    PagerDutyStandIn,
    Received,
    SlackStandIn,
    StandIn,
    WebhookStandIn,
    alertmanager_changes,
    calling,
    drop,
    pagerduty_incidents,
    server_error,
    slow,
    smtp_server,
    throttle,
)
from tests.support.spawn import run_at_once

# redis_url (a session-wide redis-server) and refused_port come from tests/conftest.py.

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z
INTERVAL_S = 60.0  # one "run" of the scheduler
ROUTING_KEY = "0123456789abcdef0123456789abcdef"
METRICS = ("probe.alpha", "probe.beta", "probe.gamma", "probe.delta")
PD, SLACK, HOOK = "pagerduty-oncall", "slack-ops", "webhook-info"
# Small, so a failing receiver fails fast: an attempt gives up after TIMEOUT_S,
# a send after BUDGET_S; a slow answer comes well after the client gave up.
TIMEOUT_S = 0.2
BUDGET_S = 0.35
SLOW_S = 0.45


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- stand-ins that know which answers came too late ------------------------------


class _LateAnswers(StandIn):
    """Remembers the requests answered after a `slow` fault.

    The client gave up on those before the answer came, so it sends the
    alert again; the service, though, saw it (and PagerDuty acted on it). The
    fault and the record are taken in the same server thread, so a
    thread-local ties them together.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._this_request = threading.local()
        self._late: list[Received] = []

    def _next_fault(self) -> Fault | None:
        fault = super()._next_fault()
        self._this_request.slow = fault is not None and fault.delay_s > 0
        return fault

    def _record(self, received: Received) -> None:
        if getattr(self._this_request, "slow", False):
            with self._lock:
                self._late.append(received)
        super()._record(received)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def on_time(self) -> list[Any]:
        """The bodies accepted (2xx) while the client still waited, in order."""
        with self._lock:
            late = {id(r) for r in self._late}
        return [
            r.json()
            for r in self.requests
            if r.status is not None and r.status < 300 and id(r) not in late
        ]

    def late(self) -> list[Any]:
        """The bodies accepted after the client had given up."""
        with self._lock:
            return [r.json() for r in self._late if r.status is not None and r.status < 300]


class PagerDuty(_LateAnswers, PagerDutyStandIn):
    pass


class Slack(_LateAnswers, SlackStandIn):
    pass


class Hook(_LateAnswers, WebhookStandIn):
    pass


@pytest.fixture
def receivers() -> Iterator[tuple[PagerDuty, Slack, Hook]]:
    with PagerDuty() as pd, Slack() as slack, Hook() as hook:
        yield pd, slack, hook


# --- config, results, runs ---------------------------------------------------------


def write_config(
    tmp_path: Path,
    environment: str,
    *,
    state: str | None,
    pd: StandIn,
    slack: StandIn,
    hook: StandIn | None = None,
    resolve_after: int = 2,
) -> Path:
    """A TOML config: critical pages PagerDuty and goes on to Slack, warning goes
    to Slack (reminded every 5 runs), info (recoveries) to a webhook."""
    lines = [f'default_environment = "{environment}"']
    if state is not None:
        lines.append(f'state = "{state}"')
    lines += [
        f"[environments.{environment}]",
        'base_url = "https://portal.example.com"',
        "[alerts]",
        f"resolve_after = {resolve_after}",
        # Random severities change often: no flapping (it holds notices back).
        'flap_window = "1s"',
        f"[alerts.receivers.{PD}]",
        'type = "pagerduty"',
        f'url = "{pd.url}"',
        f'routing_key = "{ROUTING_KEY}"',
        f"timeout_s = {TIMEOUT_S}",
        f"budget_s = {BUDGET_S}",
        f"[alerts.receivers.{SLACK}]",
        'type = "slack"',
        f'url = "{slack.url}"',
        f"timeout_s = {TIMEOUT_S}",
        f"budget_s = {BUDGET_S}",
        'remind_every = "5m"',
        "[[alerts.routes]]",
        f'receiver = "{PD}"',
        'severity = "critical"',
        "continue = true",
        "[[alerts.routes]]",
        f'receiver = "{SLACK}"',
        'severity = ["critical", "warning"]',
    ]
    if hook is not None:
        lines += [
            f"[alerts.receivers.{HOOK}]",
            'type = "webhook"',
            f'url = "{hook.url}"',
            f"timeout_s = {TIMEOUT_S}",
            f"budget_s = {BUDGET_S}",
            "[[alerts.routes]]",
            f'receiver = "{HOOK}"',
            'severity = "info"',
        ]
    path = tmp_path / f"synthetic-{environment}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def configure(path: Path, environment: str) -> Config:
    return load_config(path=path, environment=environment, environ={})


def check(metric: str, severity: Severity) -> CheckResult:
    # `beta` must breach for two runs before it alerts (a pending incident first).
    return CheckResult(
        id=f"checks/check_faults.py::check_{metric.split('.')[-1]}",
        metric=metric,
        severity=severity,
        reason=f"{metric} is {severity.value}",
        value=1,
        component="bff",
        priority="P2",
        runbook="https://runbooks.example/probes",
        sustain_s=2 * INTERVAL_S if metric == "probe.beta" else 0.0,
    )


def iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()


def at(n: int) -> float:
    return T0 + n * INTERVAL_S


def run_result(environment: str, run_id: str, n: int, script: Mapping[str, Severity]) -> RunResult:
    return RunResult(
        run_id=run_id,
        environment=environment,
        target="https://portal.example.com",
        started_at=iso(at(n)),
        finished_at=iso(at(n) + 5),
        checks=tuple(check(metric, severity) for metric, severity in script.items()),
    )


def severity_script(rng: random.Random, runs: int) -> list[dict[str, Severity]]:
    """Each check keeps its severity for a while, then moves to another at random."""
    now = dict.fromkeys(METRICS, Severity.OK)
    choices = [*[Severity.OK] * 3, Severity.WARNING, Severity.CRITICAL, Severity.UNKNOWN]
    script = []
    for _ in range(runs):
        for metric in METRICS:
            if rng.random() < 0.3:
                now[metric] = rng.choice([*choices, Severity.SKIPPED])
        script.append(dict(now))
    return script


ALL_OK = dict.fromkeys(METRICS, Severity.OK)


class Runs:
    """`pipeline.process` run after run, one interval apart, keeping every report."""

    def __init__(self, config: Config, results_dir: Path) -> None:
        self.config = config
        self.results_dir = results_dir
        self.environment = config.environment.name
        self.reports: list[AlertReport] = []
        self.results: list[RunResult] = []

    def run(self, script: Mapping[str, Severity], **options: Any) -> AlertReport:
        n = len(self.reports)
        result = run_result(self.environment, f"run-{n:03d}", n, script)
        report = pipeline.process(
            result,
            config=options.pop("config", self.config),
            mode="send",
            results_dir=self.results_dir,
            now=at(n),
            **options,
        )
        self.reports.append(report)
        self.results.append(result)
        return report

    @property
    def notices(self) -> list[Notice]:
        return [notice for report in self.reports for notice in report.notices]

    def failed(self) -> int:
        return sum(r.status == "failed" for report in self.reports for _, r in report.deliveries)


def reference(runs: Runs, skip: Sequence[int] = ()) -> None:
    """The pipeline decided, run by run, what the decisions alone decide on the same results.

    One state document is carried from run to run, as the store should. The
    pipeline leaves out a reminder for a receiver that still has an alert of
    that incident waiting in the outbox (it would add nothing); a single
    runner's outbox at the start of a run is what the last run left pending.
    Runs in ``skip`` could not reach the store, so decided nothing.
    """
    document = empty_document()
    waiting: set[tuple[str, str]] = set()
    for n, (result, report) in enumerate(zip(runs.results, runs.reports, strict=True)):
        if n in skip:
            assert report.notices == []
            continue
        context = Context(result.environment, result.run_id, at(n), result.target)
        decision = decide(result.checks, document, runs.config.alerts, context)
        document = decision.document
        expected = [
            (x.receiver, x.alert.to_json())
            for x in decision.notices
            if x.alert.kind != "remind" or (x.receiver, x.alert.dedup_key) not in waiting
        ]
        assert [(x.receiver, x.alert.to_json()) for x in report.notices] == expected, n
        waiting = {(e.receiver, e.alert["dedup_key"]) for e in report.pending}


def bodies(config: Config, notices: Sequence[Notice]) -> dict[str, list[Any]]:
    """What each receiver should have accepted for ``notices``, in order."""
    expected: dict[str, list[Any]] = collections.defaultdict(list)
    for notice in notices:
        receiver = config.alerts.receivers[notice.receiver]
        # None of these three bodies depends on the time it is rendered at.
        body = render(receiver, notice.alert, now=0.0).request["json"]
        expected[notice.receiver].append(json.loads(json.dumps(body)))
    return expected


def assert_delivered_exactly_once_in_order(
    config: Config, notices: Sequence[Notice], stand_ins: Mapping[str, _LateAnswers]
) -> None:
    """Each receiver accepted what it was sent, once each, in the decisions' order.

    A body the service accepted after the client gave up (a `slow` fault)
    is sent again, so the service sees it twice: unavoidable for any client
    (the answer is what tells it the alert arrived). PagerDuty folds the two
    into one by ``dedup_key`` (a trigger of an open incident, or a resolve of
    a resolved one, changes nothing), so the tests script slow answers for
    PagerDuty only, and those late bodies must each be one of its alerts:
    at least once, and deduplicated by key. (Only membership is checked for
    them: runs here follow each other within milliseconds, so a late answer
    may land after a later transition, which minutes between runs rule out.)
    Everything accepted on time is held to exactly once.
    """
    expected = bodies(config, notices)
    for name, stand_in in stand_ins.items():
        got = stand_in.on_time()
        lost = [body for body in expected[name] if body not in got]
        assert not lost, f"{name}: never delivered: {lost}"
        assert got == expected[name], f"{name}: delivered out of order or more than once"
        for late in stand_in.late():
            assert name == PD, f"{name}: a late answer was not expected"
            assert late in expected[name]


def summaries(notices: Sequence[Notice]) -> list[tuple[str, str, str, str]]:
    return [(n.receiver, n.alert.dedup_key, n.alert.action, n.alert.kind) for n in notices]


# --- 1. receivers failing at random --------------------------------------------------


def random_faults(rng: random.Random, *, slow_ones: bool) -> list[Fault]:
    kinds = ["500", "503", "429", "drop", *(["slow"] if slow_ones else [])]
    made = {
        "500": lambda: server_error(500),
        "503": lambda: server_error(503, "upstream unavailable"),
        "429": lambda: throttle(retry_after=0.05),
        "drop": drop,
        "slow": lambda: slow(SLOW_S),
    }
    count = rng.choice([0, 0, 1, 1, 2, 3])
    return [made[rng.choice(kinds)]() for _ in range(count)]


@pytest.mark.slow
@pytest.mark.parametrize("store", ["file", "redis"])
def test_receivers_failing_at_random_get_every_transition_exactly_once_in_order(
    store: str, receivers: tuple[PagerDuty, Slack, Hook], tmp_path: Path, request: Any
) -> None:
    # Catches: an entry dropped after a failed send (lost), one sent again
    # after it was delivered, a resolve overtaking its trigger (a receiver
    # not held back after a failure), a decision not stored with its entries.
    pd, slack, hook = receivers
    environment = unique("prod")
    state = str(request.getfixturevalue("redis_url")) if store == "redis" else None
    config = configure(
        write_config(tmp_path, environment, state=state, pd=pd, slack=slack, hook=hook),
        environment,
    )
    runs = Runs(config, tmp_path / "results")
    rng = random.Random(20251124)
    stand_ins: dict[str, _LateAnswers] = {PD: pd, SLACK: slack, HOOK: hook}

    for script in severity_script(rng, 40):
        for name, stand_in in stand_ins.items():
            stand_in.clear_faults()
            stand_in.script(random_faults(rng, slow_ones=name == PD))
        runs.run(script)
    for stand_in in stand_ins.values():
        stand_in.clear_faults()
    for _ in range(4):  # clean runs: every incident resolves, the outbox drains
        last = runs.run(ALL_OK)
    time.sleep(SLOW_S + 0.2)  # the last late answers land

    assert last.pending == []
    assert last.dead == []
    assert last.statuses == []  # nothing open, nothing pending any more
    for report in runs.reports:
        assert not [n for n in report.notes if "not decided" in n or "outbox:" in n]
    reference(runs)
    assert_delivered_exactly_once_in_order(config, runs.notices, stand_ins)
    # The faults did happen, and entries did wait in the outbox for a later run.
    assert runs.failed() >= 5
    assert sum(bool(report.pending) for report in runs.reports) >= 5
    statuses = collections.Counter(r.status for s in stand_ins.values() for r in s.requests)
    assert {500, 503, 429, None} <= set(statuses)
    assert pd.late()  # some were answered only after the client gave up
    kinds = collections.Counter(n.alert.kind for n in runs.notices)
    assert {"trigger", "escalate", "remind", "resolve", "recovery"} <= set(kinds)


# --- 2. the state store's Redis restarting -------------------------------------------


class Restarts:
    """Restarts of a Redis server, begun in the background at chosen moments."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.count = 0
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        """Start a restart; return once the server is gone (connections refused).

        The new server answers about 0.1 s later: whatever the run does in
        between meets a Redis that is away, and must wait for it.
        """
        self.join()
        port = self.server.port
        self._thread = threading.Thread(target=self.server.restart, name="redis-restart")
        self._thread.start()
        self.count += 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((LOOPBACK, port), timeout=0.05).close()
            except OSError:
                return
            time.sleep(0.001)
        pytest.fail("redis-server did not stop for its restart", pytrace=False)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


OUTAGE_RUN = 10


@pytest.mark.slow
def test_a_redis_restart_mid_run_loses_nothing_and_sends_nothing_twice(
    receivers: tuple[PagerDuty, Slack, Hook], tmp_path: Path, refused_port: int
) -> None:
    # Catches: a run that raises when Redis is away; an update, claim or
    # delivery record that does not wait for Redis to come back (a run not
    # decided; an entry sent again next run); a lease, entry or the sequence
    # lost in a restart (sent twice, out of order, or never).
    pd, slack, hook = receivers
    environment = unique("prod")
    script = severity_script(random.Random(7), 16)
    with RedisServer(tmp_path / "redis", appendonly=True) as server:
        config = configure(
            write_config(tmp_path, environment, state=server.url, pd=pd, slack=slack, hook=hook),
            environment,
        )
        runs = Runs(config, tmp_path / "results")
        restarts = Restarts(server)
        mid_delivery = 0
        sending = False  # the run's first entry has not been sent yet

        def restart_while_sending(*_: Any) -> None:
            # Called with the first entry of the run claimed, before it is sent:
            # Redis is away when the run records the delivery (and the lease
            # and the entry must have survived).
            nonlocal mid_delivery, sending
            if sending:
                sending = False
                mid_delivery += 1
                restarts.begin()

        try:
            for n, severities in enumerate(script):
                sending = False
                if n == OUTAGE_RUN:  # this run cannot reach Redis at all
                    outage = dataclasses.replace(
                        config, state=f"redis://{LOOPBACK}:{refused_port}/0"
                    )
                    report = runs.run(severities, config=outage)
                    assert report.notices == []
                    assert report.deliveries == []
                    assert [note.split(": ")[1] for note in report.notes] == [
                        "not decided this run",
                        "outbox",
                    ]
                    continue
                if n % 4 == 1:
                    restarts.begin()  # the run starts while Redis restarts
                sending = n % 4 == 3
                runs.run(severities, payload_hook=restart_while_sending)
                restarts.join()
                if n % 5 == 4:
                    server.restart()  # between runs
                    restarts.count += 1
            for _ in range(4):
                last = runs.run(ALL_OK)
        finally:
            restarts.join()

    assert restarts.count >= 8
    assert mid_delivery >= 2
    assert last.pending == []
    assert last.dead == []
    for n, report in enumerate(runs.reports):
        if n != OUTAGE_RUN:
            assert report.notes == [], (n, report.notes)
    reference(runs, skip=[OUTAGE_RUN])
    assert_delivered_exactly_once_in_order(config, runs.notices, {PD: pd, SLACK: slack, HOOK: hook})
    assert {"trigger", "resolve"} <= {n.alert.kind for n in runs.notices}


# --- 3. four runners at once ----------------------------------------------------------

RUNNERS = 4
BREACH = {
    "probe.alpha": Severity.CRITICAL,
    "probe.gamma": Severity.CRITICAL,
    "probe.delta": Severity.WARNING,
}
ROUNDS = [BREACH, BREACH, *[dict.fromkeys(BREACH, Severity.OK)] * 3]


def _concurrent_runner(
    config_path: str, environment: str, number: int, barrier: Barrier, out: str
) -> None:
    """One runner in its own (spawned) process: every round, with the others at once."""
    config = configure(Path(config_path), environment)
    with Path(out, f"runner-{number}.jsonl").open("w", encoding="utf-8") as log:
        for n, severities in enumerate(ROUNDS):
            result = run_result(environment, f"round-{n}-runner-{number}", n, severities)
            barrier.wait(timeout=30)
            report = pipeline.process(
                result,
                config=config,
                mode="send",
                results_dir=Path(out, f"results-{number}"),
                now=at(n),
            )
            log.write(json.dumps(report.to_json(now=at(n))) + "\n")


def slack_transition(message: Any) -> tuple[str, str]:
    """``("trigger", "probe.alpha")`` from a Slack message's text."""
    title = message["text"].split(" | ")[0]  # "CRITICAL P2 probe.alpha (prod-...)"
    state, _priority, metric, _environment = title.split(" ")
    return ("resolve" if state == "RESOLVED" else "trigger"), metric


@pytest.mark.slow
def test_four_runners_at_once_send_one_trigger_and_one_resolve_per_incident(
    receivers: tuple[PagerDuty, Slack, Hook], redis_url: str, tmp_path: Path
) -> None:
    # Catches: two runners both deciding a trigger (a decision not retried on
    # the state another runner wrote), two runners sending one entry (a
    # claim that is not exclusive), a resolve sent before its trigger.
    pd, slack, _ = receivers
    environment = unique("prod")
    config_path = write_config(tmp_path, environment, state=redis_url, pd=pd, slack=slack)
    codes = run_at_once(
        RUNNERS,
        _concurrent_runner,
        lambda number, barrier: (str(config_path), environment, number, barrier, str(tmp_path)),
    )
    assert codes == [0] * RUNNERS

    reports = [
        json.loads(line)
        for log in sorted(tmp_path.glob("runner-*.jsonl"))
        for line in log.read_text(encoding="utf-8").splitlines()
    ]
    assert len(reports) == RUNNERS * len(ROUNDS)
    # A runner may finish while another still sends (a note says what waits), but
    # every runner decided and read the outbox.
    problems = [n for r in reports for n in r["notes"] if "waiting in the outbox" not in n]
    assert problems == []
    pd_events = collections.defaultdict(list)
    for event in pd.events:
        pd_events[event["dedup_key"]].append(event["event_action"])
    assert dict(pd_events) == {
        f"synthetic/{environment}/probe.alpha": ["trigger", "resolve"],
        f"synthetic/{environment}/probe.gamma": ["trigger", "resolve"],
    }
    slack_events = collections.defaultdict(list)
    for message in slack.messages:
        action, metric = slack_transition(message)
        slack_events[metric].append(action)
    assert dict(slack_events) == {key: ["trigger", "resolve"] for key in BREACH}
    # Exactly the deliveries the runners report, and nothing left behind.
    delivered = [d for r in reports for d in r["deliveries"] if d["status"] == "delivered"]
    assert len(delivered) == len(pd.events) + len(slack.messages)
    store = open_alert_store(redis_url, environment=environment, results_dir=tmp_path)
    assert store.outbox() == []
    assert store.dead_letters() == []
    store.close()


# --- 4. a runner that dies mid-delivery ----------------------------------------------

LEASE_S = 1.0


@pytest.mark.parametrize("store", ["file", "redis"])
@pytest.mark.slow
def test_an_entry_held_by_a_dead_runner_is_delivered_once_its_lease_expires(
    store: str, receivers: tuple[PagerDuty, Slack, Hook], tmp_path: Path, request: Any
) -> None:
    # Catches: a runner sending an entry another holds (a page sent twice
    # while the holder may still be sending it), and a lease that never
    # runs out (the page of a dead runner lost for good).
    pd, slack, _ = receivers
    environment = unique("prod")
    state = str(request.getfixturevalue("redis_url")) if store == "redis" else None
    config = configure(
        write_config(tmp_path, environment, state=state, pd=pd, slack=slack), environment
    )
    runs = Runs(config, tmp_path / "results")
    breach = {"probe.alpha": Severity.CRITICAL}

    pd.script([server_error(503)] * 5)  # PagerDuty is down for the first run
    first = runs.run(breach)
    pd.clear_faults()
    (entry,) = [e for e in first.pending if e.receiver == PD]
    assert pd.events == []
    assert len(slack.messages) == 1
    # Another runner claims it, starts sending, and dies: it never reports back.
    dying = open_alert_store(config.state, environment=environment, results_dir=runs.results_dir)
    assert dying.claim(entry.id, owner="runner-that-died", lease_s=LEASE_S)
    dying.close()
    started = time.monotonic()

    held = runs.run(breach)
    assert time.monotonic() - started < LEASE_S, "too slow to test the lease"
    assert held.deliveries == []  # held by the other runner: not sent twice
    assert [e.id for e in held.pending] == [entry.id]
    assert pd.events == []

    time.sleep(LEASE_S + 0.1 - (time.monotonic() - started))
    taken_over = runs.run(breach)
    assert [(e.id, r.status) for e, r in taken_over.deliveries] == [(entry.id, "delivered")]
    assert taken_over.pending == []
    for _ in range(2):
        runs.run({"probe.alpha": Severity.OK})

    assert [(e["event_action"], e["dedup_key"]) for e in pd.events] == [
        ("trigger", f"synthetic/{environment}/probe.alpha"),
        ("resolve", f"synthetic/{environment}/probe.alpha"),
    ]
    assert [slack_transition(m) for m in slack.messages] == [
        ("trigger", "probe.alpha"),
        ("resolve", "probe.alpha"),
    ]
    assert summaries(runs.notices) == [
        (PD, f"synthetic/{environment}/probe.alpha", "trigger", "trigger"),
        (SLACK, f"synthetic/{environment}/probe.alpha", "trigger", "trigger"),
        (PD, f"synthetic/{environment}/probe.alpha", "resolve", "resolve"),
        (SLACK, f"synthetic/{environment}/probe.alpha", "resolve", "resolve"),
    ]


# --- 5. a commit whose answer is lost ------------------------------------------------


class CuttingProxy:
    """A TCP proxy on loopback in front of Redis that, once armed, lets the next
    EXEC through and cuts the connection before its answer comes back.

    Redis has committed the transaction; the client only sees its
    connection drop, as when Redis fails over or a load balancer resets
    the connection at that moment.

    `take_away` is the other fault: Redis gone for a while (every connection
    cut, new ones closed at once), then back with its data, as a killed
    Redis restarted from its append-only file is to its clients.
    """

    def __init__(self, port: int) -> None:
        self._target = port
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self.armed = threading.Event()
        self.cuts = 0
        self.away = threading.Event()
        self.outages = 0
        self._back: threading.Timer | None = None
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def take_away(self, for_s: float) -> None:
        """Cut every connection now and refuse new ones for ``for_s``; returns at once."""
        self.wait_back()
        self.away.set()
        self.outages += 1
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._back = threading.Timer(for_s, self.away.clear)
        self._back.start()

    def wait_back(self) -> None:
        if self._back is not None:
            self._back.join()
            self._back = None

    def close(self) -> None:
        if self._back is not None:
            self._back.cancel()
            self.wait_back()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.away.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection((LOOPBACK, self._target))
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            muted = threading.Event()
            for source, sink, upstream in ((client, server, True), (server, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, sink, upstream, muted), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, upstream: bool, muted: threading.Event
    ) -> None:
        try:
            while data := source.recv(65536):
                if upstream and b"EXEC\r\n" in data and self.armed.is_set():
                    self.armed.clear()
                    muted.set()  # what Redis answers from now on is swallowed
                if not upstream and muted.is_set():
                    # Swallow the answers until Redis has said all (the commit
                    # is done), then cut the client off.
                    source.settimeout(0.1)
                    with contextlib.suppress(TimeoutError):
                        while source.recv(65536):
                            pass
                    self.cuts += 1
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):  # shutdown, not just close: wakes the other pump
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def test_the_cutting_proxy_loses_the_answer_of_a_committed_exec(redis_url: str) -> None:
    # The tool of the next test, checked on its own: so that its expected
    # failure can only be the store's.
    port = urlsplit(redis_url).port
    assert port is not None
    proxy = CuttingProxy(port)
    key = unique("cut")
    client = redis.Redis.from_url(f"redis://{LOOPBACK}:{proxy.port}/0")
    try:
        assert client.ping()
        proxy.armed.set()
        with client.pipeline(transaction=True) as pipe:
            pipe.set(key, "committed")
            with pytest.raises(redis.ConnectionError):
                pipe.execute()
        assert proxy.cuts == 1
        assert redis.Redis.from_url(redis_url).get(key) == b"committed"
        assert client.get(key) == b"committed"  # the proxy serves new connections as before
    finally:
        client.close()
        proxy.close()


def test_a_run_whose_commit_answer_is_lost_is_decided_once(
    receivers: tuple[PagerDuty, Slack, Hook], redis_url: str, tmp_path: Path
) -> None:
    # The store's promise: a run's decision and its entries are written
    # together, once. A drop after EXEC is not a conflict with another
    # runner: the run must not be decided again on the document it already
    # wrote. Catches: the OK run counted twice, so the incident resolves
    # after one OK run of the two resolve_after asks for (and the report
    # shows the second decision, not the one committed).
    pd, slack, _ = receivers
    environment = unique("prod")
    port = urlsplit(redis_url).port
    assert port is not None
    proxy = CuttingProxy(port)
    try:
        state = f"redis://{LOOPBACK}:{proxy.port}/0"
        config = configure(
            write_config(tmp_path, environment, state=state, pd=pd, slack=slack, resolve_after=2),
            environment,
        )
        runs = Runs(config, tmp_path / "results")
        runs.run({"probe.alpha": Severity.CRITICAL})
        assert [e["event_action"] for e in pd.events] == ["trigger"]

        proxy.armed.set()
        first_ok = runs.run({"probe.alpha": Severity.OK})
        assert proxy.cuts == 1
        assert first_ok.notes == []
        # One OK run of the two resolve_after asks for: nothing to resolve yet.
        assert [e["event_action"] for e in pd.events] == ["trigger"]
        assert first_ok.notices == []

        runs.run({"probe.alpha": Severity.OK})
        assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
        reference(runs)
    finally:
        proxy.close()


def test_a_silence_removal_whose_commit_answer_is_lost_is_reported_as_done(
    receivers: tuple[PagerDuty, Slack, Hook],
    redis_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The pipeline keeps a run from being decided twice (it remembers run
    # ids); other changes to the store still run again on what they wrote.
    pd, slack, _ = receivers
    environment = unique("prod")
    port = urlsplit(redis_url).port
    assert port is not None
    proxy = CuttingProxy(port)
    try:
        path = write_config(
            tmp_path, environment, state=f"redis://{LOOPBACK}:{proxy.port}/0", pd=pd, slack=slack
        )
        where = ["--config", str(path), "--env", environment]
        assert cli.main(["silence", "add", "--metric", "probe.alpha", "--for", "1h", *where]) == 0
        silence_id = capsys.readouterr().out.split()[1]

        proxy.armed.set()
        code = cli.main(["silence", "remove", silence_id, *where])
        out, err = capsys.readouterr()

        assert proxy.cuts == 1
        store = open_alert_store(redis_url, environment=environment, results_dir=tmp_path)
        assert store.read()["silences"] == []  # it was removed, once
        store.close()
        assert (code, out, err) == (0, f"removed silence {silence_id}\n", "")
    finally:
        proxy.close()


# --- 6. the store away between a receiver's 2xx and its record ------------------------

KILLED_S = 5.0  # longer than one store call rides out (about 4.4 s of retries)
AM, MAIL = "alertmanager", "email-team"
RECEIVER_TYPES = {
    PD: "pagerduty",
    SLACK: "slack",
    HOOK: "webhook",
    MAIL: "email",
    AM: "alertmanager",
}


class KillOnce:
    """Takes the store away for ``for_s`` the first time it is called."""

    def __init__(self, proxy: CuttingProxy, for_s: float) -> None:
        self.proxy, self.for_s, self.done = proxy, for_s, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.proxy.take_away(self.for_s)


def write_every_receiver_config(
    tmp_path: Path,
    environment: str,
    *,
    state: str,
    stand_ins: Mapping[str, StandIn],
    smtp_port: int,
    record_for: str | None,
) -> Path:
    """Every receiver type gets every critical alert (and its resolve)."""
    lines = [
        f'default_environment = "{environment}"',
        f'state = "{state}"',
        f"[environments.{environment}]",
        'base_url = "https://portal.example.com"',
        "[alerts]",
        "resolve_after = 1",
        *([f'record_for = "{record_for}"'] if record_for is not None else []),
    ]
    for name, kind in RECEIVER_TYPES.items():
        lines += [f"[alerts.receivers.{name}]", f'type = "{kind}"', "timeout_s = 1", "budget_s = 1"]
        if kind == "email":
            lines += [
                'smtp_host = "127.0.0.1"',
                f"smtp_port = {smtp_port}",
                'smtp_tls = "none"',
                'from = "synthetic@portal.example.com"',
                'to = ["team@portal.example.com"]',
            ]
        elif kind == "alertmanager":
            lines.append(f'url = "{stand_ins[name].base_url}"')
        else:
            lines.append(f'url = "{stand_ins[name].url}"')
        if kind == "pagerduty":
            lines.append(f'routing_key = "{ROUTING_KEY}"')
    for name in RECEIVER_TYPES:
        lines += ["[[alerts.routes]]", f'receiver = "{name}"', 'severity = "critical"']
        lines.append("continue = true")
    path = tmp_path / f"synthetic-{environment}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def extra(expected: Sequence[Any], accepted: Sequence[Any]) -> int:
    """How many of ``accepted`` are beyond what was expected: the duplicates."""
    counted = collections.Counter(json.dumps(item, sort_keys=True) for item in accepted)
    counted.subtract(json.dumps(item, sort_keys=True) for item in expected)
    return sum(n for n in counted.values() if n > 0)


def collapse(items: Sequence[Any]) -> list[Any]:
    """``items`` with each run of equal neighbours kept once: a repeat sent at once."""
    return [item for n, item in enumerate(items) if n == 0 or item != items[n - 1]]


def what_each_received(
    config: Config,
    notices: Sequence[Notice],
    stand_ins: Mapping[str, StandIn],
    mailbox: Mailbox,
) -> dict[str, tuple[list[Any], list[Any]]]:
    """Per receiver, (what it should have got, what it accepted), comparably:
    JSON bodies; an email's Message-ID; Alertmanager's (labels, firing or
    resolved) per alert posted (a re-send has a later endsAt, nothing else)."""
    now = time.time()

    def alertmanager_view(posts: Sequence[Any]) -> list[Any]:
        return [[(a["labels"], _ended(a, now)) for a in post] for post in posts]

    got: dict[str, tuple[list[Any], list[Any]]] = {}
    for name in RECEIVER_TYPES:
        receiver = config.alerts.receivers[name]
        rendered = [
            render(receiver, n.alert, now=now).request for n in notices if n.receiver == name
        ]
        if name == MAIL:
            expected = [str(message_from_string(r["message"])["Message-ID"]) for r in rendered]
            accepted = [str(m["Message-ID"]) for m in mailbox.messages()]
        elif name == AM:
            expected = alertmanager_view([json.loads(json.dumps(r["json"])) for r in rendered])
            accepted = alertmanager_view(stand_ins[name].accepted)
        else:
            expected = [json.loads(json.dumps(r["json"])) for r in rendered]
            accepted = stand_ins[name].accepted
        got[name] = (expected, accepted)
    return got


def _ended(alert: Mapping[str, Any], now: float) -> bool:
    ends = alert.get("endsAt")
    return ends is not None and datetime.datetime.fromisoformat(ends).timestamp() <= now


@pytest.fixture
def every_receiver() -> Iterator[tuple[dict[str, StandIn], Mailbox, int]]:
    mailbox = Mailbox()
    controller = smtp_server(mailbox)
    try:
        with PagerDuty() as pd, Slack() as slack, Hook() as hook, AlertmanagerStandIn() as am:
            yield {PD: pd, SLACK: slack, HOOK: hook, AM: am}, mailbox, controller.port
    finally:
        controller.stop()


def arm_kills(
    stand_ins: Mapping[str, StandIn], mailbox: Mailbox, proxy: CuttingProxy, for_s: float
) -> None:
    """Each receiver's first alert takes the store away after it is accepted."""
    for stand_in in stand_ins.values():
        stand_in.script([calling(KillOnce(proxy, for_s))])
    mailbox.on_data = KillOnce(proxy, for_s)


@pytest.mark.slow
def test_a_store_away_between_a_2xx_and_its_record_costs_no_duplicate(
    every_receiver: tuple[dict[str, StandIn], Mailbox, int], redis_url: str, tmp_path: Path
) -> None:
    # The case: Redis killed after a receiver accepted an alert and
    # before the store recorded it; the runner gave up and a later run sent
    # it again (3 duplicates in 36 transitions). Catches: a runner that does
    # not keep trying to record an outcome while its lease still holds.
    stand_ins, mailbox, smtp_port = every_receiver
    environment = unique("prod")
    port = urlsplit(redis_url).port
    assert port is not None
    proxy = CuttingProxy(port)
    try:
        path = write_every_receiver_config(
            tmp_path,
            environment,
            state=f"redis://{LOOPBACK}:{proxy.port}/0",
            stand_ins=stand_ins,
            smtp_port=smtp_port,
            record_for=None,  # the default
        )
        config = configure(path, environment)
        runs = Runs(config, tmp_path / "results")
        arm_kills(stand_ins, mailbox, proxy, KILLED_S)
        runs.run({"probe.alpha": Severity.CRITICAL})
        for _ in range(3):
            last = runs.run({"probe.alpha": Severity.OK})
        proxy.wait_back()
    finally:
        proxy.close()

    received = what_each_received(config, runs.notices, stand_ins, mailbox)
    assert {name: extra(*got) for name, got in received.items()} == dict.fromkeys(received, 0)
    assert proxy.outages == len(RECEIVER_TYPES)
    assert [report.notes for report in runs.reports] == [[]] * len(runs.reports)
    assert last.pending == []
    for name, (expected, accepted) in received.items():
        assert len(expected) >= 2, name  # a trigger and its resolve at least
        assert accepted == expected, f"{name} ({RECEIVER_TYPES[name]}): lost or out of order"


@pytest.mark.slow
def test_a_store_away_for_longer_than_record_for_repeats_that_entry_once(
    every_receiver: tuple[dict[str, StandIn], Mailbox, int], redis_url: str, tmp_path: Path
) -> None:
    # With no time to record (record_for = 0) and the store away for longer
    # than a store call rides out, the outcome of the accepted alert is
    # unknown: a later run sends that entry again, once, and nothing else
    # twice. PagerDuty and Alertmanager fold the repeat (dedup_key, labels):
    # nothing visible. Slack, email and a webhook get it twice. Catches: an
    # entry lost when its outcome is unknown, a repeat of more than that
    # entry, a repeat that is not said to be one.
    stand_ins, mailbox, smtp_port = every_receiver
    environment = unique("prod")
    port = urlsplit(redis_url).port
    assert port is not None
    proxy = CuttingProxy(port)
    config_path = write_every_receiver_config(
        tmp_path,
        environment,
        state=f"redis://{LOOPBACK}:{proxy.port}/0",
        stand_ins=stand_ins,
        smtp_port=smtp_port,
        record_for="0s",
    )
    config = configure(config_path, environment)
    # The store comes back once the lease of the runner that gave up has run
    # out: the next run may take the entry over at once.
    away_s = pipeline.Lease.covering(1.0, 0.0).seconds + 0.2
    try:
        runs = Runs(config, tmp_path / "results")
        arm_kills(stand_ins, mailbox, proxy, away_s)
        # One receiver's first alert per run meets the outage; the run gives up there.
        for _ in range(len(RECEIVER_TYPES)):
            runs.run({"probe.alpha": Severity.CRITICAL})
            proxy.wait_back()
        for _ in range(3):
            last = runs.run({"probe.alpha": Severity.OK})
    finally:
        proxy.close()

    assert proxy.outages == len(RECEIVER_TYPES)
    gave_up = [n for report in runs.reports for n in report.notes]
    assert len(gave_up) == len(RECEIVER_TYPES)
    assert all(
        "could not record it within 0 s, so a later run sends it again" in n for n in gave_up
    )
    assert last.pending == []
    again = [
        r.detail
        for report in runs.reports
        for _, r in report.deliveries
        if "sent again" in r.detail
    ]
    assert len(again) == len(RECEIVER_TYPES)
    duplicates = {}
    visible = {}
    received = what_each_received(config, runs.notices, stand_ins, mailbox)
    for name, (expected, accepted) in received.items():
        # The repeat is the first alert's, at once: the one whose outcome was unknown.
        assert collapse(accepted) == expected, name
        assert accepted[0] == accepted[1], name
        duplicates[name] = len(accepted) - len(expected)
        if name == PD:
            visible[name] = len(pagerduty_incidents(stand_ins[PD].accepted)) - len(
                pagerduty_incidents(expected)
            )
        elif name == AM:
            changes = alertmanager_changes(stand_ins[AM].accepted, now=time.time())
            visible[name] = len(changes) - len(collapse(expected))
        else:
            visible[name] = duplicates[name]
    assert duplicates == dict.fromkeys(RECEIVER_TYPES, 1)  # one store failure each
    assert {name: extra(*got) for name, got in received.items()} == duplicates
    assert visible == {PD: 0, AM: 0, SLACK: 1, HOOK: 1, MAIL: 1}
