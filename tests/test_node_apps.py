"""The real Node BFFs of tests/node/: they start, answer, log the shapes their
libraries really write, and the ground truth (tests/support/node_truth.py) counts a mix
of traffic small enough to count by hand."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import node_apps
from tests.support.node_apps import Calls, Driven, NodeApp, Orders, drive, require_node
from tests.support.node_truth import STACKS, ground_truth, parse, read_lines

WAIT_S = 10.0


def now_ms() -> int:
    return int(time.time() * 1000)


def logged(app: NodeApp, driven: Driven, path: Path | None = None) -> list[dict[str, Any]]:
    """The lines ``app`` wrote to ``path`` (its combined log) while ``driven`` ran."""
    records, unreadable = parse(read_lines([path or app.log_file], driven.since))
    assert unreadable == 0
    return records


def requests_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "responseTime" in r and "statusCode" in r.get("res", {})]


def eventually(probe: Any, expected: Any) -> Any:
    """``probe()`` once it equals ``expected``; its last value after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while (value := probe()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


# --- express + pino-http defaults ----------------------------------------------


@pytest.mark.slow
def test_express_logs_pino_http_defaults(express_bff):
    driven = drive(
        express_bff,
        [
            Orders(2),
            Orders(1, status=500),
            Orders(1, own=True),
            Calls("whmcs", 1),
            Calls("whmcs", 1, fail="1"),
            Orders(1, throws=True),
        ],
    )
    records = logged(express_bff, driven)
    requests = requests_of(records)
    assert len(requests) == 7

    server_errors = [r for r in requests if r["res"]["statusCode"] >= 500]
    assert sorted(r["res"]["statusCode"] for r in server_errors) == [500, 500, 502]
    for line in server_errors:  # no customLogLevel: a 5xx is not an error line
        assert line["level"] == 30
        assert line["msg"] == "request errored"
        assert line["err"]["message"] == f"failed with status code {line['res']['statusCode']}"
    for line in requests:
        assert isinstance(line["responseTime"], int)
        assert {"id", "method", "url", "headers", "remoteAddress"} <= line["req"].keys()
        assert "user-agent" in line["req"]["headers"]  # default serializers log headers

    own = [r for r in requests if r["req"]["headers"]["user-agent"].startswith("synthetic/")]
    assert [r["req"]["id"] for r in own] == ["synthetic-run1-check_3"]
    assert all(isinstance(r["req"]["id"], int) for r in requests if r not in own)

    completed = [r for r in records if r.get("msg") == "WHMCS API call completed"]
    failed = [r for r in records if r.get("msg") == "WHMCS API call failed"]
    assert [(r["level"], r["dependency"], r["statusCode"]) for r in completed] == [
        (30, "whmcs", 200)
    ]
    assert [(r["level"], r["dependency"], r["statusCode"]) for r in failed] == [(50, "whmcs", 503)]
    assert isinstance(failed[0]["duration"], int)
    assert failed[0]["err"]["message"] == "WHMCS answered HTTP 503"
    # Logged through req.log: the call line carries its request's id.
    ids = {r["req"]["id"] for r in requests if r["req"]["url"].startswith("/api/calls/whmcs")}
    assert {r["req"]["id"] for r in completed + failed} == ids

    unhandled = [r for r in records if r.get("msg") == "Unhandled error"]
    assert [r["level"] for r in unhandled] == [50]


@pytest.mark.slow
def test_express_error_file_has_each_error_line_once_more(express_bff):
    driven = drive(
        express_bff, [Calls("salesforce", 2, fail="1"), Orders(1, throws=True), Orders(2)]
    )
    combined = logged(express_bff, driven)
    assert express_bff.error_log_file is not None
    errors = logged(express_bff, driven, express_bff.error_log_file)
    assert errors == [r for r in combined if r["level"] >= 50]
    assert len(errors) == 3

    now = now_ms()
    alone = ground_truth("express", [express_bff.log_file], now, since=driven.since)
    both = ground_truth("express", express_bff.log_files, now, since=driven.since)
    assert alone.error_count == both.error_count == 3


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def connections(url: str, server: str) -> float | None:
    return scrape(url).get(("bff_http_active_connections", (("server", server),)))


@pytest.mark.slow
def test_express_metrics_count_each_listeners_connections(express_bff):
    admin = express_bff.admin_url
    assert admin is not None
    samples = scrape(admin)
    names = {name for name, _ in samples}
    assert {"process_cpu_user_seconds_total", "nodejs_eventloop_lag_seconds"} <= names
    # The scrape's own connection (an earlier scrape's may still be closing).
    assert eventually(lambda: connections(admin, "admin"), 1) == 1

    assert eventually(lambda: connections(admin, "public"), 0) == 0
    with contextlib.ExitStack() as stack:
        for _ in range(3):
            stack.enter_context(
                socket.create_connection(("127.0.0.1", express_bff.port), timeout=5)
            )
        assert eventually(lambda: connections(admin, "public"), 3) == 3
        # The public listener serves the same registry.
        assert connections(express_bff.url, "public") == 4
    assert eventually(lambda: connections(admin, "public"), 0) == 0


# --- NestJS + nestjs-pino + terminus --------------------------------------------


@pytest.mark.slow
def test_nest_logs_context_and_its_own_levels(nest_bff):
    driven = drive(
        nest_bff,
        [
            Orders(1),
            Orders(1, status=500),
            Orders(1, status=404),
            Calls("whmcs", 1),
            Calls("salesforce", 1, fail="1"),
            Calls("freebit", 1, fail="reset"),
            Orders(1, throws=True),
        ],
    )
    records = logged(nest_bff, driven)
    requests = requests_of(records)
    levels = sorted((r["res"]["statusCode"], r["level"]) for r in requests)
    # customLogLevel: 5xx at 50, 4xx at 40.
    assert levels == [(200, 30), (200, 30), (404, 40), (500, 50), (500, 50), (502, 50), (502, 50)]
    assert all(
        r["msg"] == ("request errored" if r["level"] == 50 else "request completed")
        for r in requests
    )

    by_context = {r["context"]: r for r in records if str(r.get("context")).endswith("Service")}
    assert set(by_context) == {"WhmcsService", "SalesforceService", "FreebitService"}
    whmcs = by_context["WhmcsService"]
    assert (whmcs["level"], whmcs["msg"], whmcs["statusCode"]) == (
        30,
        "WHMCS API call completed",
        200,
    )
    assert isinstance(whmcs["duration"], int)
    salesforce = by_context["SalesforceService"]
    assert salesforce["level"] == 50
    assert salesforce["err"]["message"].startswith(
        "Salesforce API call failed: query Account after "
    )
    assert salesforce["msg"] == salesforce["err"]["message"]
    assert "duration" not in salesforce  # the Nest idiom logger.error(message, stack)
    assert by_context["FreebitService"]["err"]["message"].endswith(": fetch failed")
    # nestjs-pino binds the request logger: service lines carry their request.
    call_ids = {r["req"]["id"] for r in requests if r["req"]["url"].startswith("/api/calls/")}
    assert {r["req"]["id"] for r in by_context.values()} == call_ids

    handler = [r for r in records if r.get("context") == "ExceptionsHandler"]
    assert [(r["level"], r["msg"]) for r in handler] == [(50, "order 0: lookup crashed")]

    startup, _ = parse(read_lines([nest_bff.log_file]))
    contexts = {r.get("context") for r in startup}
    assert {"InstanceLoader", "RoutesResolver", "RouterExplorer", "NestApplication"} <= contexts


@pytest.mark.slow
def test_terminus_answers_503_and_logs_a_failed_health_check(nest_bff):
    since = nest_bff.offsets()
    with httpx.Client(base_url=nest_bff.url, timeout=10) as client:
        assert client.get("/auth/health-check").json()["status"] == "ok"
        assert client.put("/__test/health", json={"whmcs": "down"}).status_code == 200
        try:
            down = client.get("/auth/health-check")
            guide = client.get("/health")  # database and cache only
        finally:
            client.put("/__test/health", json={"whmcs": "up"})
        assert client.get("/auth/health-check").status_code == 200
        assert client.put("/__test/health", json={"whmcs": "sideways"}).status_code == 400

    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "error"
    assert body["error"] == {"whmcs": {"status": "down", "message": "whmcs unreachable"}}
    assert body["info"] == {"database": {"status": "up"}, "salesforce": {"status": "up"}}
    assert body["details"]["whmcs"]["status"] == "down"
    assert guide.status_code == 200
    assert guide.json()["details"] == {"database": {"status": "up"}, "cache": {"status": "up"}}

    records, _ = parse(read_lines([nest_bff.log_file], since))
    prefix = "Health Check has failed! "
    failed = [r for r in records if str(r.get("msg")).startswith(prefix)]
    assert [r["level"] for r in failed] == [50]
    assert json.loads(failed[0]["msg"][len(prefix) :]) == body["details"]


# --- fastify ----------------------------------------------------------------------


@pytest.mark.slow
def test_fastify_logs_reqid_incoming_and_completed(fastify_bff):
    driven = drive(
        fastify_bff,
        [
            Orders(1),
            Orders(1, status=500),
            Orders(1, own=True),
            Calls("freebit", 1),
            Orders(1, throws=True),
        ],
    )
    records = logged(fastify_bff, driven)
    incoming = [r for r in records if r.get("msg") == "incoming request"]
    completed = [r for r in records if r.get("msg") == "request completed"]
    assert len(incoming) == len(completed) == 5
    assert {r["reqId"] for r in incoming} == {r["reqId"] for r in completed}
    assert "headers" not in incoming[0]["req"]  # fastify's req serializer logs none
    assert all(r["level"] == 30 for r in incoming + completed)  # a 5xx too
    assert sorted(r["res"]["statusCode"] for r in completed) == [200, 200, 200, 500, 500]
    assert all(isinstance(r["responseTime"], float) for r in completed)

    own = [r["reqId"] for r in incoming if r["reqId"].startswith("synthetic-")]
    assert own == ["synthetic-run1-check_2"]  # requestIdHeader: x-correlation-id
    assert all(r["reqId"].startswith("req-") for r in incoming if r["reqId"] not in own)

    call = [r for r in records if r.get("dependency") == "freebit"]
    assert [(r["level"], r["msg"], r["statusCode"]) for r in call] == [
        (30, "Freebit API call completed", 200)
    ]
    freebit_request = [r for r in incoming if r["req"]["url"].startswith("/api/calls/freebit")]
    assert call[0]["reqId"] == freebit_request[0]["reqId"]

    thrown = [r for r in records if r["level"] >= 50]
    assert [(r["msg"], r["res"]["statusCode"]) for r in thrown] == [
        ("order 0: lookup crashed", 500)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["express", "fastify"])
def test_guide_health_switches(stack, request):
    app: NodeApp = request.getfixturevalue(f"{stack}_bff")
    with httpx.Client(base_url=app.url, timeout=10) as client:
        healthy = client.get("/health")
        client.put("/__test/health", json={"cache": "down"})
        try:
            degraded = client.get("/health")
        finally:
            client.put("/__test/health", json={"cache": "up"})
        refused = client.put("/__test/health", json={"cache": "sideways"})
        # A message has no place in the guide's body: refused, not dropped.
        with_message = client.put(
            "/__test/health", json={"cache": {"status": "down", "message": "x"}}
        )
        after = client.get("/health")
    assert (healthy.status_code, healthy.json()) == (
        200,
        {"status": "ok", "checks": {"database": "ok", "cache": "ok"}},
    )
    assert (degraded.status_code, degraded.json()) == (
        503,
        {"status": "degraded", "checks": {"database": "ok", "cache": "fail"}},
    )
    assert refused.status_code == with_message.status_code == 400
    assert (after.status_code, after.json()) == (healthy.status_code, healthy.json())


# --- ground truth against a mix counted by hand -------------------------------------------

# Lines of level >= 50 a 5xx request line adds: nestjs-pino's customLogLevel makes
# it an error; pino-http's defaults and fastify log it at 30.
ERROR_LINE_PER_5XX = {"express": 0, "nest": 1, "fastify": 0}


@pytest.mark.slow
@pytest.mark.parametrize("stack", STACKS)
def test_ground_truth_of_requests(stack, request):
    app: NodeApp = request.getfixturevalue(f"{stack}_bff")
    driven = drive(
        app,
        [
            Orders(5),
            Orders(2, delay_ms=2100),
            Orders(3, status=500),
            Orders(2, status=500, own=True),
            Orders(1, delay_ms=2500, own=True),
        ],
    )
    assert driven.answered(500) == 3
    assert driven.answered(500, own=True) == 2
    truth = ground_truth(stack, app.log_files, now_ms(), since=driven.since)

    assert (truth.requests, truth.server_errors) == (10, 3)
    assert truth.error_rate == pytest.approx(30.0)
    assert truth.slow_requests == 2  # the monitor's own slow request left out
    assert len(truth.durations) == 10
    assert truth.p95 is not None
    # The 9th of 10: a delayed one (fastify's hrtime can read a hair under the
    # timer's 2100 ms, so compare with the slow bound instead).
    assert truth.p95 > 2000
    assert truth.error_count == 3 * ERROR_LINE_PER_5XX[stack]
    assert truth.own_lines >= 3


@pytest.mark.slow
@pytest.mark.parametrize("stack", STACKS)
def test_ground_truth_of_outgoing_calls(stack, request):
    app: NodeApp = request.getfixturevalue(f"{stack}_bff")
    driven = drive(
        app,
        [
            Calls("whmcs", 3, delay_ms=50),
            Calls("whmcs", 1, fail="1", delay_ms=50),
            Calls("freebit", 1, fail="reset"),
            Calls("salesforce", 2, fail="1", own=True),
        ],
    )
    assert driven.answered(502) == 2
    truth = ground_truth(stack, app.log_files, now_ms(), since=driven.since)

    whmcs, freebit, salesforce = (truth.dependencies[n] for n in ("whmcs", "freebit", "salesforce"))
    assert (whmcs.calls, whmcs.failed, whmcs.error_rate) == (4, 1, 25.0)
    assert (freebit.calls, freebit.failed, freebit.error_rate) == (1, 1, 100.0)
    assert (salesforce.calls, salesforce.error_rate) == (0, None)  # only the monitor's own
    assert truth.external_error_rate == pytest.approx(40.0)
    # A failure logged the Nest way has no duration field.
    assert len(whmcs.durations) == (3 if stack == "nest" else 4)
    # Each call waited for the dependency's delay (less Date.now()'s rounding).
    assert min(whmcs.durations) >= 49
    assert whmcs.p95 in whmcs.durations

    assert (truth.requests, truth.server_errors) == (5, 2)  # the 502s
    assert truth.error_count == 2 + 2 * ERROR_LINE_PER_5XX[stack]


# --- the ground truth's own rules, on lines written by hand -------------------------------

NOW = 1_736_937_000_000  # a minute boundary


def pino_http_line(
    request_id: Any, status: int, *, at: int = NOW, agent: str = "curl/8", **extra
) -> str:
    fields = {
        "level": 30,
        "time": at,
        "req": {"id": request_id, "headers": {"user-agent": agent}},
        "res": {"statusCode": status},
        "responseTime": 12,
        "msg": "request completed",
        **extra,
    }
    return json.dumps(fields)


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_a_line_in_two_files_counts_once_and_twice_in_one_file_twice(tmp_path):
    error = json.dumps({"level": 50, "time": NOW, "msg": "boom"})
    combined = write(tmp_path / "combined.log", error, error, pino_http_line(1, 200))
    errors = write(tmp_path / "error.log", error, "not json")
    truth = ground_truth("express", [combined, errors], NOW)
    assert (truth.error_count, truth.requests, truth.unreadable_lines) == (2, 1, 1)


def test_the_monitors_requests_and_their_lines_are_left_out(tmp_path):
    log = write(
        tmp_path / "combined.log",
        pino_http_line("synthetic-r-check_a", 500),
        pino_http_line(7, 500, agent="synthetic/0.1.0"),
        json.dumps({"level": 50, "time": NOW, "req": {"id": 7}, "msg": "failed while serving 7"}),
        pino_http_line(8, 200),
    )
    truth = ground_truth("express", [log], NOW)
    assert (truth.requests, truth.server_errors, truth.error_count, truth.own_lines) == (1, 0, 0, 3)


def test_windows_are_whole_minutes_ending_with_now(tmp_path):
    minute = 60_000
    log = write(
        tmp_path / "combined.log",
        pino_http_line(1, 500, at=NOW - 4 * minute - 1),  # the 6th minute back: not recent
        pino_http_line(2, 200, at=NOW - 4 * minute),  # the 5th minute back: recent
        pino_http_line(3, 200, at=NOW + minute - 1),  # the current minute
        pino_http_line(4, 200, at=NOW - 59 * minute - 1),  # the 61st minute back: gone
        pino_http_line(5, 200, at=NOW - 59 * minute),  # the 60th: in the hour
    )
    truth = ground_truth("express", [log], NOW + 30_000)
    assert (truth.requests, truth.server_errors, len(truth.durations)) == (4, 1, 2)


def test_nest_calls_are_found_by_their_service_context(tmp_path):
    log = write(
        tmp_path / "combined.log",
        json.dumps({"level": 30, "time": NOW, "context": "WhmcsService", "duration": 40}),
        json.dumps({"level": 50, "time": NOW, "context": "WhmcsService", "msg": "failed"}),
        json.dumps({"level": 30, "time": NOW, "context": "FreebitService", "statusCode": 503}),
        json.dumps({"level": 30, "time": NOW, "dependency": "whmcs", "duration": 9}),
    )
    truth = ground_truth("nest", [log], NOW)
    whmcs, freebit = truth.dependencies["whmcs"], truth.dependencies["freebit"]
    assert (whmcs.calls, whmcs.failed, whmcs.durations) == (2, 1, (40.0,))
    assert (freebit.calls, freebit.failed) == (1, 1)  # a 5xx status is a failure too
    metrics = truth.metrics()
    assert metrics["external.error_rate{dependency=whmcs}"] == 50.0
    assert metrics["external.response_time_p95{dependency=whmcs}"] == 40.0
    assert metrics["external.error_rate"] == pytest.approx(200 / 3)
    assert metrics["app.error_rate"] is None  # no request lines
    with pytest.raises(ValueError, match="stack must be one of"):
        ground_truth("koa", [log], NOW)


def test_require_node_skips_without_packages_but_fails_under_ci(tmp_path, monkeypatch):
    monkeypatch.setattr(node_apps, "NODE_MODULES", tmp_path)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="npm packages missing"):
        require_node()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"\.ci/run"):
        require_node()
