"""Unit tests of what is pure but was tested only through whole runs: how an
exception is classified, how a check's spec is built from its markers and the
environment, settling with a fake clock, and the summary table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from synthetic import blame
from synthetic.config import Environment, Runbooks, ThresholdOverride
from synthetic.errors import (
    CheckStopped,
    MeasurementError,
    NotConfigured,
    ResponseRejected,
    Unreachable,
)
from synthetic.outcome import classify
from synthetic.outputs.summary import headline, table
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.settle import settle
from synthetic.spec import CheckSpec, build_spec
from synthetic.thresholds import parse_threshold


def spec(unreachable: Severity = Severity.CRITICAL) -> CheckSpec:
    return CheckSpec(
        node_id="checks/check_q.py::check_q",
        metric="whmcs.queue_size",
        unit="requests",
        component="queues",
        runbook=None,
        priority="P2",
        warning=parse_threshold("> 10", unit="requests"),
        critical=parse_threshold("> 50", unit="requests"),
        unreachable=unreachable,
    )


# -- classify: an exception of a check or its fixture, as an outcome --------------------------


def test_not_configured_is_skipped_with_the_key() -> None:
    outcome = classify(spec(), NotConfigured("redis_url", "staging"))
    assert outcome.severity is Severity.SKIPPED
    assert outcome.reason == (
        "whmcs.queue_size: skipped: redis_url is not configured for environment 'staging'"
    )


@pytest.mark.parametrize(
    ("exc", "via", "told"),
    [
        (Unreachable("GET /health: connection refused", target="bff"), None,
         "GET /health: connection refused"),
        (ConnectionRefusedError(111, "Connection refused"), None,
         "ConnectionRefusedError: [Errno 111] Connection refused"),
        (httpx.ConnectError("refused", request=httpx.Request("GET", "http://x/health")), "http",
         "ConnectError: refused (GET http://x/health)"),
        (TimeoutError("timed out"), None, "TimeoutError: timed out"),
    ],
    ids=["ours", "os", "httpx", "socket timeout"],
)  # fmt: skip
def test_what_did_not_answer_is_unreachable_at_the_checks_severity(
    exc: BaseException, via: str | None, told: str
) -> None:
    outcome = classify(spec(), exc)
    assert outcome.severity is Severity.CRITICAL
    assert outcome.unreachable
    assert outcome.via == via
    assert outcome.reason == f"whmcs.queue_size: unreachable: {told}"
    # The check's own `unreachable="warning"` is honoured.
    assert classify(spec(Severity.WARNING), exc).severity is Severity.WARNING


def test_an_answer_the_monitor_refuses_is_critical_not_unreachable() -> None:
    outcome = classify(spec(), ResponseRejected("GET /health: response too large", url="/health"))
    assert (outcome.severity, outcome.unreachable) == (Severity.CRITICAL, False)
    assert outcome.reason == "whmcs.queue_size: GET /health: response too large"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (MeasurementError("/health/queues has no 'whmcs'"), "/health/queues has no 'whmcs'"),
        (KeyError("whmcs"), "could not measure: KeyError: 'whmcs'"),
        (ValueError(), "could not measure: ValueError"),
    ],
)
def test_a_failure_to_measure_is_unknown(exc: BaseException, reason: str) -> None:
    outcome = classify(spec(), exc)
    assert outcome.severity is Severity.UNKNOWN
    assert outcome.reason == f"whmcs.queue_size: {reason}"


def test_a_stopped_check_is_blamed_on_what_it_waited_for() -> None:
    deadline = classify(spec(), CheckStopped(30, waiting=None, run_deadline=True))
    assert deadline.severity is Severity.UNKNOWN
    assert deadline.reason == "whmcs.queue_size: " + blame.run_deadline(30, started=True).reason
    own = classify(spec(), CheckStopped(5, waiting=None, run_deadline=False))
    assert own.reason == "whmcs.queue_size: " + blame.stopped(5, None).reason


def test_pytest_timeouts_own_stop_is_unknown() -> None:
    failed = pytest.fail.Exception("Timeout (>60.0s) from pytest-timeout.")
    outcome = classify(spec(), failed)
    assert outcome.severity is Severity.UNKNOWN
    assert outcome.reason == (
        "whmcs.queue_size: the check ran past its deadline (Timeout (>60.0s) from pytest-timeout.)"
    )


# -- build_spec: markers, labels, the environment's overrides ---------------------------------


CHECK = """
import pytest

pytestmark = pytest.mark.metric(component="queues")

@pytest.mark.metric("bullmq.waiting", unit="jobs", runbook="queue-management", priority="P2",
                    sustain="5m", depends_on="redis")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
@pytest.mark.parametrize("queue", ["email"])
def check_waiting(queue):
    '''Jobs waiting in a queue.'''
    return 0
"""


def test_a_spec_is_built_from_markers_labels_and_overrides(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npython_functions = check_*\n")
    (item,) = pytester.getitems(CHECK)
    environment = Environment(
        name="staging",
        thresholds={'bullmq.waiting{queue="email"}': ThresholdOverride(warning="> 100")},
    )
    runbooks = Runbooks(base_url="https://wiki.example.com/runbooks")
    built = build_spec(item, environment=environment, runbooks=runbooks, config_source="x.toml")
    assert built.node_id == item.nodeid
    assert (built.metric, built.unit, built.component) == ("bullmq.waiting", "jobs", "queues")
    assert built.labels == {"queue": "email"}
    assert built.display_name == 'bullmq.waiting{queue="email"}'
    assert built.warning is not None
    assert built.warning.text == "> 100"  # the environment's override
    assert built.critical is not None
    assert built.critical.text == "> 50"  # the marker
    assert built.runbook == "https://wiki.example.com/runbooks/queue-management"
    assert (built.priority, built.sustain_s, built.depends_on) == ("P2", 300.0, ("redis",))
    assert built.description == "Jobs waiting in a queue."


# -- settle: a fake clock, reruns scripted ------------------------------------------------------


def result(node: str, severity: Severity) -> CheckResult:
    return CheckResult(id=node, metric=node, severity=severity, reason=f"{node}: {severity.value}")


def run_of(*checks: CheckResult) -> RunResult:
    return RunResult("r", "prod", None, "t0", "t1", checks)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(clock: FakeClock, answers: list[Severity]) -> tuple[Callable[..., Any], list[Any]]:
    calls: list[tuple[float, list[str]]] = []

    def rerun(nodes: list[str]) -> RunResult:
        calls.append((clock.now, nodes))
        clock.now += 1.0  # a rerun takes a second
        return run_of(result("b", answers[len(calls) - 1]))

    return rerun, calls


def test_settling_reruns_the_failing_checks_every_period_until_they_pass() -> None:
    clock = FakeClock()
    rerun, calls = scripted(clock, [Severity.CRITICAL, Severity.OK])
    said: list[str] = []
    first = run_of(result("a", Severity.OK), result("b", Severity.CRITICAL))
    settled = settle(
        first, "critical", rerun, settle_s=60, every_s=10, say=said.append,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert settled.settled
    assert calls == [(10.0, ["b"]), (20.0, ["b"])]  # every_s apart, only the failing check
    assert settled.waited_s == 21.0
    assert {c.id: c.severity for c in settled.run.checks} == {"a": Severity.OK, "b": Severity.OK}
    assert said[0] == "waiting for 1 check(s) to settle (b CRITICAL); 1m left"


def test_settling_gives_up_when_the_time_is_spent() -> None:
    clock = FakeClock()
    rerun, calls = scripted(clock, [Severity.CRITICAL] * 10)
    first = run_of(result("b", Severity.CRITICAL))
    settled = settle(
        first, "critical", rerun, settle_s=25, every_s=10, say=lambda _: None,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert not settled.settled
    # Attempts at 10 and 20, and a last one at the settle time's end, 25.
    assert [at for at, _ in calls] == [10.0, 20.0, 25.0]
    assert settled.run.worst is Severity.CRITICAL


# -- the summary table ---------------------------------------------------------------------------


def test_the_summary_table_is_worst_first_and_fits_its_width() -> None:
    run = RunResult(
        "r", "production", "https://bff.example.com", "t0", "t1",
        (
            CheckResult(id="checks/check_h.py::check_ok", metric="health.status",
                        severity=Severity.OK, reason="health.status = ok", value="ok",
                        critical="!= 'ok'"),
            CheckResult(id="checks/check_q.py::check_q", metric="whmcs.queue_size",
                        severity=Severity.CRITICAL, value=57, unit="requests",
                        warning="> 10", critical="> 50",
                        reason="whmcs.queue_size = 57 requests (critical > 50)"),
        ),
    )  # fmt: skip
    assert table(run, width=120) == [
        "SEVERITY  CHECK                 VALUE        WARNING  CRITICAL  REASON",
        "CRITICAL  check_q.py::check_q   57 requests  > 10     > 50      "
        "whmcs.queue_size = 57 requests (critical > 50)",
        # A word is shown quoted, as thresholds write it.
        "OK        check_h.py::check_ok  'ok'         -        != 'ok'   health.status = ok",
    ]
    # Too narrow for the reasons: each goes on its own line under its row, whole.
    assert table(run, width=60) == [
        "SEVERITY  CHECK                 VALUE        WARNING  CRITICAL",
        "CRITICAL  check_q.py::check_q   57 requests  > 10     > 50",
        "    whmcs.queue_size = 57 requests (critical > 50)",
        "OK        check_h.py::check_ok  'ok'         -        != 'ok'",
        "    health.status = ok",
    ]
    assert headline(run) == "CRITICAL: production (https://bff.example.com): 1 ok, 1 critical"
