"""The Loki source against a loopback stand-in that answers from the same lines.

The stand-in (tests/support/loki_standin.py) evaluates the LogQL it is sent with its
own reading of Loki's semantics, in Loki's documented answer format, and can
answer as a failing Loki does (an error, a partial result, 429, 503, down).
Counts must equal the files' analysis of the same lines exactly; a p95 must
equal the true rank value (the files' sketch is within 1 % of it).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthetic.config import Environment, load_config
from synthetic.errors import MeasurementError, NoLogData, QueryFailed, Unreachable
from synthetic.logs.analysis import analyse
from synthetic.logs.metrics import LogMetrics
from synthetic.logs.sources.client import Deadline, JsonClient
from synthetic.logs.sources.read import read_backend, readings
from synthetic.results import CheckResult
from tests.support.alert_runs import Runs, guide_settings
from tests.support.catalogue_runs import CHECKS
from tests.support.logs_helpers import (
    NOW_MS,
    PORTAL_DEPENDENCIES_TOML,
    Line,
    generate,
    in_window,
    rank_value,
    write,
)
from tests.support.loki_standin import PORTAL_SELECTOR_TOML, LokiStandIn, loki_standin

DEPENDENCIES = ("whmcs", "salesforce", "freebit")
LOG_CHECKS = ("check_logs.py", "check_external.py", "check_application.py")


def environment(
    directory: Path, url: str, *, loki: str = "", logs: str = "", env: str = ""
) -> Environment:
    config = directory / "synthetic.toml"
    config.write_text(
        f"[environments.t]\ntimeout_s = 2\nretries = 1\ncheck_timeout_s = 20\n{env}\n"
        f'[environments.t.logs]\nsource = "loki"\n{logs}\n'
        f'[environments.t.logs.loki]\nurl = "{url}"\n{loki}\n'
        + ("" if "selector" in loki else PORTAL_SELECTOR_TOML)
        + PORTAL_DEPENDENCIES_TOML,
        encoding="utf-8",
    )
    return load_config(path=config, environment="t").environment


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Line]]:
    generated = generate(3000)
    path = tmp_path_factory.mktemp("loki") / "combined.log"
    write(path, generated)
    return path, generated


@pytest.fixture
def loki(lines: tuple[Path, list[Line]]) -> Iterator[LokiStandIn]:
    with loki_standin([lines[0]]) as standin:
        yield standin


def files_answers(path: Path, env: Environment) -> LogMetrics:
    settings = env.logs.model_copy(update={"source": "file"})
    return LogMetrics(analyse([str(path)], settings, None, now_ms=NOW_MS), settings)


def test_every_answer_equals_the_files_and_the_truth(
    tmp_path: Path, lines: tuple[Path, list[Line]], loki: LokiStandIn
) -> None:
    path, generated = lines
    env = environment(tmp_path, loki.url)
    document = read_backend(env, now_ms=NOW_MS)
    answers = readings(document, env)
    files = files_answers(path, env)

    for name in ("error_rate", "error_count", "slow_requests", "external_error_rate"):
        assert getattr(answers, name)().value == pytest.approx(getattr(files, name)().value), name
    for dependency in DEPENDENCIES:
        mine, theirs = (x.external_error_rate(dependency).value for x in (answers, files))
        assert mine == pytest.approx(theirs), dependency

    # The p95s: the true rank value exactly (Loki has no sketch), the files' within 1 %.
    for series, kind in (("requests", "request"), *((f"dep:{d}", d) for d in DEPENDENCIES)):
        durations = [ln.duration for ln in generated if ln.kind == kind and in_window(ln, 5)]
        truth = rank_value(durations, 0.95)
        assert answers.response_time_p95(series).value == pytest.approx(truth, abs=0.05), series
        assert files.response_time_p95(series).value == pytest.approx(truth, rel=0.01), series

    requests = [ln for ln in generated if ln.kind == "request" and in_window(ln, 60)]
    assert document["requests"]["count"] == len(requests)
    assert document["requests"]["errors"] == sum(1 for ln in requests if ln.failed)
    assert document["about"]["queries"] == len(loki.queries)
    assert len(loki.queries) == 14  # docs/logs.md's count: 10, 3 dependencies, the detection
    assert document["about"]["shape"].startswith("guide (detected")


def test_evidence_lines_are_redacted_and_the_slowest_come_first(
    tmp_path: Path, loki: LokiStandIn
) -> None:
    env = environment(tmp_path, loki.url, logs="slow_ms = 800")
    answers = readings(read_backend(env, now_ms=NOW_MS), env)
    slow = answers.slow_requests()
    slowest = slow.evidence["slowest"]
    durations = [entry["duration"] for entry in slowest]
    assert durations
    assert durations == sorted(durations, reverse=True)
    assert all(d > 800 for d in durations)
    shown = json.dumps(slowest)
    assert "@example.com" not in shown  # the lines' e-mail addresses
    assert answers.error_count().evidence["latest_errors"]


@pytest.mark.parametrize("fault", ["matrix"])
def test_a_matrix_answer_reads_as_its_last_value(
    tmp_path: Path, loki: LokiStandIn, fault: str
) -> None:
    env = environment(tmp_path, loki.url)
    plain = read_backend(env, now_ms=NOW_MS)
    loki.fault = fault
    assert read_backend(env, now_ms=NOW_MS)["requests"] == plain["requests"]


def test_a_query_error_is_unknown_with_lokis_message_on_one_line(
    tmp_path: Path, loki: LokiStandIn
) -> None:
    loki.fault = "error"
    env = environment(tmp_path, loki.url)
    document = read_backend(env, now_ms=NOW_MS)
    assert not document.get("unreachable")
    with pytest.raises(MeasurementError) as raised:
        readings(document, env)
    assert not isinstance(raised.value, Unreachable)
    message = str(raised.value)
    assert "refused the query (HTTP 400): parse error at line 1, col 1" in message
    assert "\n" not in message


def test_a_partial_answer_is_refused(tmp_path: Path, loki: LokiStandIn) -> None:
    loki.fault = "partial"
    env = environment(tmp_path, loki.url)
    with pytest.raises(MeasurementError, match=r"partial result \(query timed out"):
        readings(read_backend(env, now_ms=NOW_MS), env)


def test_429_is_retried_then_reported(tmp_path: Path, loki: LokiStandIn) -> None:
    env = environment(tmp_path, loki.url)
    loki.fault, loki.fault_times = "429", 1
    assert "error" not in read_backend(env, now_ms=NOW_MS)
    loki.fault, loki.fault_times = "429", 1_000
    with pytest.raises(MeasurementError, match=r"rate-limited the query \(HTTP 429\): Ingestion"):
        readings(read_backend(env, now_ms=NOW_MS), env)


def test_503_to_the_end_is_unreachable_and_a_passing_one_is_retried(
    tmp_path: Path, loki: LokiStandIn
) -> None:
    env = environment(tmp_path, loki.url)
    loki.fault, loki.fault_times = "503", 1
    assert "error" not in read_backend(env, now_ms=NOW_MS)
    loki.fault, loki.fault_times = "503", 1_000
    document = read_backend(env, now_ms=NOW_MS)
    assert document["unreachable"] is True
    with pytest.raises(Unreachable, match="answered HTTP 503: upstream connect error") as raised:
        readings(document, env)
    assert raised.value.target == "logs"


def test_a_loki_that_is_down_is_unreachable(tmp_path: Path, refused_port: int) -> None:
    env = environment(tmp_path, f"http://127.0.0.1:{refused_port}")
    document = read_backend(env, now_ms=NOW_MS)
    assert document["unreachable"] is True
    assert "did not answer: ConnectError" in document["error"]


@pytest.mark.slow
def test_tenant_and_credentials_are_sent(
    tmp_path: Path, lines: tuple[Path, list[Line]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOKI_PASSWORD", "s3cret-pass")
    basic = 'tenant = "portal"\nusername = "monitor"\npassword = "${LOKI_PASSWORD}"'
    with loki_standin([lines[0]], tenant="portal", basic=("monitor", "s3cret-pass")) as loki:
        assert "error" not in read_backend(
            environment(tmp_path, loki.url, loki=basic), now_ms=NOW_MS
        )
        wrong = basic.replace("portal", "other")
        document = read_backend(environment(tmp_path, loki.url, loki=wrong), now_ms=NOW_MS)
        assert "refused the query (HTTP 401)" in document["error"]
    with loki_standin([lines[0]], bearer="tok-123456") as loki:
        token = 'bearer = "tok-123456"'
        assert "error" not in read_backend(
            environment(tmp_path, loki.url, loki=token), now_ms=NOW_MS
        )


def test_no_lines_for_the_selector_is_unknown_naming_it_never_a_green_zero(
    tmp_path: Path, loki: LokiStandIn
) -> None:
    env = environment(tmp_path, loki.url, loki="selector = '{service=\"someone-else\"}'")
    answers = readings(read_backend(env, now_ms=NOW_MS), env)
    for ask in (
        answers.error_rate,
        answers.error_count,
        answers.slow_requests,
        answers.response_time_p95,
    ):
        with pytest.raises(NoLogData, match=r'Loki \{service="someone-else"\}'):
            ask()


def test_answers_past_the_size_cap_are_refused(loki: LokiStandIn) -> None:
    client = JsonClient(
        "Loki", loki.url, deadline=Deadline(10), timeout_s=5, retries=0, max_bytes=200
    )
    with client, pytest.raises(QueryFailed, match="answered more than"):
        client.get("/loki/api/v1/query_range", {
            "query": '{service="customer-portal-bff"}', "start": "0",
            "end": str(NOW_MS * 1_000_000), "limit": "50"})  # fmt: skip


def test_a_backend_that_never_answers_is_unreachable_within_the_deadline() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()  # accepts (the kernel does) and never answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        client = JsonClient("Loki", url, deadline=Deadline(1.0), timeout_s=30, retries=5)
        started = time.monotonic()
        with client, pytest.raises(Unreachable, match="did not answer"):
            client.get("/loki/api/v1/query", {"query": "x"})
        assert time.monotonic() - started < 5  # the deadline, not 6 x 30 s


def run_checks(pytester: pytest.Pytester, url: str, *args: str) -> list[dict[str, Any]]:
    config = pytester.path / "synthetic.toml"
    config.write_text(
        "[environments.t]\ntimeout_s = 1\nretries = 0\n"
        f'[environments.t.logs]\nsource = "loki"\n[environments.t.logs.loki]\nurl = "{url}"\n'
        + PORTAL_SELECTOR_TOML
        + 'username = "monitor"\npassword = "${LOKI_PASSWORD}"\n'
        + PORTAL_DEPENDENCIES_TOML,
        encoding="utf-8",
    )
    out = pytester.path / "out"
    pytester.runpytest(
        *(str(CHECKS / name) for name in LOG_CHECKS), "--env", "t",
        "--synthetic-config", str(config), "--results-dir", str(out),
        "-p", "no:cacheprovider", *args,
    )  # fmt: skip
    found = json.loads((out / "results.json").read_text())["checks"]
    return [c for c in found if "logs" in c["reaches"]]  # not catalog.cache, integration.*


def test_loki_down_is_one_logs_root_cause_and_no_secret_shows(
    pytester: pytest.Pytester, refused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOKI_PASSWORD", "hunter2-loki")
    checks = run_checks(pytester, f"http://monitor:hunter2-loki@127.0.0.1:{refused_port}")
    assert len(checks) >= 9
    assert {c["severity"] for c in checks} == {"critical"}
    assert {c["unreachable"] for c in checks} == {"logs"}
    assert all("unreachable: Loki at" in c["reason"] for c in checks)
    assert "hunter2-loki" not in json.dumps(checks)

    runs = Runs(guide_settings())
    decision = runs.run(time.time(), *(CheckResult.from_json(c) for c in checks))
    roots = [n.alert for n in decision.notices if n.alert.metric == "target.unreachable"]
    assert [(a.labels, a.severity) for a in roots] == [({"target": "logs"}, "critical")]
    inhibited = [s for s in decision.statuses if s.state == "inhibited"]
    assert len(inhibited) == len(checks)


def test_the_checks_read_loki_once_per_run(
    pytester: pytest.Pytester, loki: LokiStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the stand-in's lines re-timed to now, every log check measures and the
    backend is asked once per run, whichever check asks first."""
    now_ms = int(time.time() * 1000)
    shifted = pytester.path / "now.log"
    shifted.write_text("".join(
        json.dumps({**(r := json.loads(line)), "time": r["time"] + now_ms - NOW_MS}) + "\n"
        for line in loki.files[0].read_text().splitlines()))  # fmt: skip
    loki.files = [shifted]
    loki.basic = ("monitor", "pw-for-loki")
    monkeypatch.setenv("LOKI_PASSWORD", "pw-for-loki")
    checks = run_checks(pytester, loki.url)
    measured = [c for c in checks if c["severity"] in ("ok", "warning", "critical")]
    assert len(measured) == len(checks), [c["reason"] for c in checks if c not in measured]
    assert len(loki.queries) == measured[0]["evidence"]["source"]["queries"]
