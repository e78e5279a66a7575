"""The Prometheus exporter: its metrics, the node_exporter textfile, a real Pushgateway."""

from __future__ import annotations

import decimal
import math
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric

from synthetic.errors import ExportError
from synthetic.exporters.prometheus import prometheus_labels, push, registry, write_textfile
from synthetic.measure.prometheus import fetch_samples, gauge_value, parse
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.sandbox.processes import LOOPBACK
from tests.support.pushgateway_server import Pushgateway, start_pushgateway_or_fail

FINISHED_AT = "2024-05-01T12:00:01.500Z"
FINISHED_EPOCH = 1714564801.5
CHECK_FAMILIES = (
    "synthetic_check_value",
    "synthetic_check_severity",
    "synthetic_check_duration_seconds",
)
# bcrypt (cost 4) of PASSWORD, for the Pushgateway's basic_auth_users.
USER, PASSWORD = "pusher", "s3cret-pw"
PASSWORD_HASH = "$2b$04$d0MxJuKSgkA30hhcobBVM.nKN1224ziVseAuArNFmvAdDCI2WC4km"


def check(
    id: str, severity: Severity = Severity.OK, value: object = 1, **fields: object
) -> CheckResult:
    return CheckResult(
        id=id,
        metric=str(fields.pop("metric", "demo.metric")),
        severity=severity,
        reason="because",
        value=value,
        **fields,  # type: ignore[arg-type]
    )


def run_of(*checks: CheckResult, environment: str = "prod", **fields: object) -> RunResult:
    return RunResult(
        run_id="run-1",
        environment=environment,
        target=None,
        started_at="2024-05-01T12:00:00.000Z",
        finished_at=str(fields.pop("finished_at", FINISHED_AT)),
        checks=checks,
        **fields,  # type: ignore[arg-type]
    )


def families(run: RunResult) -> list[Metric]:
    """The run's registry as written and read back by our reader."""
    return parse(generate_latest(registry(run)).decode("utf-8"))


def by_check(fams: list[Metric], name: str) -> dict[str, float]:
    return {s.labels["check"]: s.value for s in fetch_samples(fams, name)}


# --- the registry ----------------------------------------------------------


def test_severity_and_duration_per_check_with_skipped_left_out() -> None:
    run = run_of(
        check("ok", Severity.OK, duration_ms=1500),
        check("warn", Severity.WARNING, duration_ms=20),
        check("crit", Severity.CRITICAL),
        check("unknown", Severity.UNKNOWN, value=None),
        check("skip", Severity.SKIPPED, value=None),
    )
    fams = families(run)

    assert by_check(fams, "synthetic_check_severity") == {
        "ok": 0,
        "warn": 1,
        "crit": 2,
        "unknown": 3,
    }
    durations = by_check(fams, "synthetic_check_duration_seconds")
    assert durations == {"ok": 1.5, "warn": 0.02, "crit": 0.0, "unknown": 0.0}
    for name in CHECK_FAMILIES:
        assert not fetch_samples(fams, name, {"check": "skip"}), name
    sample = fetch_samples(fams, "synthetic_check_severity", {"check": "warn"})[0]
    assert sample.labels == {"environment": "prod", "check": "warn", "metric": "demo.metric"}


def test_value_only_for_finite_numbers() -> None:
    run = run_of(
        check("int", value=7),
        check("float", value=0.25),
        check("decimal", value=decimal.Decimal("2.5")),
        check("negative", value=-3),
        check("bool", value=True),
        check("text", value="200 OK"),
        check("none", Severity.UNKNOWN, value=None),
        check("nan", value=math.nan),
        check("inf", value=math.inf),
        check("minus-inf", value=-math.inf),
    )
    fams = families(run)

    assert by_check(fams, "synthetic_check_value") == {
        "int": 7,
        "float": 0.25,
        "decimal": 2.5,
        "negative": -3,
    }
    # Every measured check still has its severity, with or without a value.
    assert len(by_check(fams, "synthetic_check_severity")) == 10


def test_prometheus_labels_are_prefixed_sanitised_and_distinct() -> None:
    assert prometheus_labels({"queue": "email"}) == {"label_queue": "email"}
    assert prometheus_labels({"environment": "x", "check": "y", "job": "z"}) == {
        "label_environment": "x",
        "label_check": "y",
        "label_job": "z",
    }
    assert prometheus_labels({"a.b": "1", "a-b": "2", "a_b": "3", "9 lives": "4", "": "5"}) == {
        "label_": "5",
        "label_9_lives": "4",
        "label_a_b": "2",  # "a-b" sorts first
        "label_a_b_2": "1",
        "label_a_b_3": "3",
    }


def test_labelled_checks_share_one_label_set_per_family() -> None:
    run = run_of(
        check("email", labels={"queue": "email"}, value=3, metric="bullmq.waiting"),
        check("sms", labels={"queue": "sms", "environment": "eu"}, value=4),
        check("plain", value=5),
    )
    fams = families(run)

    for family in fams:
        names = {frozenset(s.labels) for s in family.samples}
        assert len(names) == 1, (family.name, names)
    assert gauge_value(fams, "synthetic_check_value", {"label_queue": "email"}) == 3
    sms = fetch_samples(fams, "synthetic_check_value", {"check": "sms"})[0]
    assert sms.labels["environment"] == "prod"  # the run's, never the check's
    assert sms.labels["label_environment"] == "eu"
    plain = fetch_samples(fams, "synthetic_check_value", {"check": "plain"})[0]
    assert plain.labels["label_queue"] == ""  # empty: the same as absent to Prometheus
    assert fetch_samples(fams, "synthetic_check_value", {"check": "email"})[0].labels["metric"] == (
        "bullmq.waiting"
    )


def test_run_metrics() -> None:
    run = run_of(
        check("a", Severity.OK),
        check("b", Severity.WARNING),
        check("c", Severity.WARNING),
        check("d", Severity.SKIPPED),
    )
    fams = families(run)

    env = {"environment": "prod"}
    assert gauge_value(fams, "synthetic_run_timestamp_seconds", env) == FINISHED_EPOCH
    assert gauge_value(fams, "synthetic_run_worst_severity", env) == 1
    assert gauge_value(fams, "synthetic_run_complete", env) == 1
    counts = {s.labels["severity"]: s.value for s in fetch_samples(fams, "synthetic_checks")}
    assert counts == {"ok": 1, "warning": 2, "critical": 0, "unknown": 0, "skipped": 1}


def test_incomplete_run_is_unknown_and_not_complete() -> None:
    fams = families(run_of(check("a"), interrupted=True, finished_at="2024-05-01T14:00:01.5+02:00"))

    assert gauge_value(fams, "synthetic_run_complete") == 0
    assert gauge_value(fams, "synthetic_run_worst_severity") == 3
    assert gauge_value(fams, "synthetic_run_timestamp_seconds") == FINISHED_EPOCH


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is UTC-10 (naive times would be read as local)."""
    monkeypatch.setenv("TZ", "Pacific/Honolulu")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_from_utc")
def test_naive_finished_at_is_utc_and_garbage_is_an_export_error() -> None:
    fams = families(run_of(finished_at="2024-05-01T12:00:01.500"))
    assert gauge_value(fams, "synthetic_run_timestamp_seconds") == FINISHED_EPOCH

    with pytest.raises(ExportError, match="finished_at 'yesterday' is not an ISO 8601 time"):
        registry(run_of(finished_at="yesterday"))


def test_a_repeated_check_is_one_series() -> None:
    run = run_of(check("same", Severity.OK, value=1), check("same", Severity.CRITICAL, value=2))
    text = generate_latest(registry(run)).decode()

    assert len(fetch_samples(text, "synthetic_check_value")) == 1
    assert gauge_value(text, "synthetic_check_severity") == 2  # the later result


# --- the node_exporter textfile --------------------------------------------

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*$")


def assert_node_exporter_textfile(text: str) -> list[Metric]:
    """What node_exporter's textfile collector wants: parseable, typed, no timestamps."""
    assert text.endswith("\n")
    fams = parse(text, source="textfile")
    for family in fams:
        assert _NAME.match(family.name), family.name
        assert f"# TYPE {family.name} gauge\n" in text
        assert f"# HELP {family.name} " in text
        assert family.samples, family.name
        assert len({frozenset(s.labels) for s in family.samples}) == 1, family.name
        for sample in family.samples:
            assert sample.timestamp is None
            assert all(_LABEL.match(name) and not name.startswith("__") for name in sample.labels)
    return fams


def test_textfile_parses_back(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.prom"
    run = run_of(
        check("tests/test_q.py::test_waiting[email]", labels={"queue": 'e"mail\\x\n'}, value=12),
        check("tests/test_h.py::test_health", Severity.CRITICAL, value="down"),
        environment="staging",
    )
    write_textfile(run, path)

    fams = assert_node_exporter_textfile(path.read_text(encoding="utf-8"))
    labels = {"label_queue": 'e"mail\\x\n', "environment": "staging"}
    assert gauge_value(fams, "synthetic_check_value", labels) == 12
    assert gauge_value(fams, "synthetic_run_worst_severity") == 2
    assert os.listdir(tmp_path) == ["synthetic.prom"]  # no temporary file left behind


def test_textfile_is_replaced_whole_never_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.prom"
    write_textfile(run_of(check("a", value=1)), path)
    before = path.stat().st_ino
    with path.open(encoding="utf-8") as reader:  # a collector reading the old file
        write_textfile(run_of(check("a", value=2)), path)
        old = reader.read()

    # The reader still sees the whole old file: the new one was renamed over it.
    assert gauge_value(old, "synthetic_check_value") == 1
    assert gauge_value(path.read_text(encoding="utf-8"), "synthetic_check_value") == 2
    assert path.stat().st_ino != before
    assert os.listdir(tmp_path) == ["synthetic.prom"]


def test_textfile_errors_are_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "synthetic.prom"
    with pytest.raises(ExportError) as raised:
        write_textfile(run_of(check("a")), missing)
    assert str(raised.value) == f"cannot write {missing}: No such file or directory"

    with pytest.raises(ExportError, match=r"reads only \*\.prom files"):
        write_textfile(run_of(check("a")), tmp_path / "synthetic.txt")
    assert os.listdir(tmp_path) == []


# --- pushing to a real Pushgateway ------------------------------------------


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Pushgateway]:
    with start_pushgateway_or_fail(tmp_path) as server:
        yield server


def on_gateway(gateway: Pushgateway, name: str, **labels: str) -> dict[str, float]:
    """The gateway's ``name`` samples matching ``labels``, by check id (or environment)."""
    samples = fetch_samples(gateway.metrics(), name, labels, source=gateway.url)
    return {s.labels.get("check", s.labels["environment"]): s.value for s in samples}


@pytest.mark.slow
def test_push_shows_the_run_on_the_gateway(gateway: Pushgateway) -> None:
    run = run_of(
        check("q", Severity.WARNING, value=42, labels={"queue": "email/eu"}),
        check("h", Severity.CRITICAL, value="down"),
        check("s", Severity.SKIPPED, value=None),
        environment="prod",
    )
    push(run, gateway.url)

    group = {"job": "synthetic", "environment": "prod"}
    assert on_gateway(gateway, "synthetic_check_value", **group) == {"q": 42}
    assert on_gateway(gateway, "synthetic_check_value", label_queue="email/eu") == {"q": 42}
    assert on_gateway(gateway, "synthetic_check_severity", **group) == {"q": 1, "h": 2}
    assert on_gateway(gateway, "synthetic_run_worst_severity", **group) == {"prod": 2}
    assert on_gateway(gateway, "synthetic_run_timestamp_seconds", **group) == {
        "prod": FINISHED_EPOCH
    }
    assert on_gateway(gateway, "synthetic_checks", severity="skipped", **group) == {"prod": 1}


@pytest.mark.slow
def test_environments_keep_their_own_group(gateway: Pushgateway) -> None:
    push(run_of(check("a", value=1), check("b", value=2), environment="prod"), gateway.url)
    push(run_of(check("a", value=10, labels={"x": "y"}), environment="staging/eu"), gateway.url)
    bare = gateway.url.removeprefix("http://")  # host:port, as prometheus_client takes it
    push(run_of(check("a", value=3), environment="prod"), bare, job="nightly")

    assert on_gateway(gateway, "synthetic_check_value", job="synthetic", environment="prod") == {
        "a": 1,
        "b": 2,
    }
    staging = {"job": "synthetic", "environment": "staging/eu"}
    assert on_gateway(gateway, "synthetic_check_value", **staging) == {"a": 10}
    assert on_gateway(gateway, "synthetic_check_value", job="nightly") == {"a": 3}

    # A push replaces its whole group: a check gone from the run is gone from the gateway.
    push(run_of(check("a", value=5), environment="prod"), gateway.url)
    assert on_gateway(gateway, "synthetic_check_value", job="synthetic", environment="prod") == {
        "a": 5
    }
    assert on_gateway(gateway, "synthetic_check_value", **staging) == {"a": 10}


@pytest.mark.slow
def test_credentials_in_the_url_are_basic_auth(tmp_path: Path) -> None:
    with start_pushgateway_or_fail(
        tmp_path, basic_auth={USER: PASSWORD_HASH}, login=(USER, PASSWORD)
    ) as gateway:
        host = gateway.url.removeprefix("http://")
        push(run_of(check("a", value=7)), f"http://{USER}:{PASSWORD}@{host}")
        assert on_gateway(gateway, "synthetic_check_value", job="synthetic") == {"a": 7}

        with pytest.raises(ExportError) as raised:
            push(run_of(check("a", value=8)), f"http://{USER}:wrong-password@{host}")
        message = str(raised.value)
        assert (
            message == f"cannot push to Pushgateway http://{USER}:***@{host}: HTTP 401 Unauthorized"
        )
        assert on_gateway(gateway, "synthetic_check_value", job="synthetic") == {"a": 7}


@pytest.mark.slow
def test_gateway_rejection_is_an_export_error(gateway: Pushgateway) -> None:
    with pytest.raises(ExportError) as raised:
        push(run_of(check("a")), gateway.url, job="")
    assert str(raised.value) == (
        f"cannot push to Pushgateway {gateway.url}: HTTP 400 Bad Request (job name is required)"
    )


def test_refused_gateway_is_one_line_without_password(refused_port: int) -> None:
    url = f"http://user:hunter2-pw@{LOOPBACK}:{refused_port}/"
    with pytest.raises(ExportError) as raised:
        push(run_of(check("a")), url, timeout_s=2)

    message = str(raised.value)
    assert message == (
        f"cannot push to Pushgateway http://user:***@{LOOPBACK}:{refused_port}/: Connection refused"
    )
    assert "hunter2" not in message
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_silent_gateway_times_out() -> None:
    # Listening but never accepting: the connection opens, no answer ever comes.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind((LOOPBACK, 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ExportError, match=r"^cannot push to Pushgateway \S+: timed out$"):
            push(run_of(check("a")), f"http://{LOOPBACK}:{port}", timeout_s=0.3)
    assert time.monotonic() - started < 3


def test_unusable_url_or_timeout_is_an_export_error() -> None:
    for url in ("ftp://x:12/", "http://", "http:///metrics", "http://[::1:9091"):
        with pytest.raises(ExportError) as raised:
            push(run_of(check("a")), url)
        assert str(raised.value) == (
            f"cannot push to Pushgateway {url}: not an http:// or https:// URL"
        )
    with pytest.raises(ExportError, match="timeout_s must be positive"):
        push(run_of(check("a")), "http://127.0.0.1:9", timeout_s=0)
    with pytest.raises(ExportError, match=r"^cannot push to Pushgateway http://u:\*\*\*@h:port/: "):
        push(run_of(check("a")), "http://u:pw-secret@h:port/")
