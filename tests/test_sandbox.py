"""The sandbox: a simulated Customer Portal BFF on loopback, tested over real sockets."""

from __future__ import annotations

import itertools
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthetic.sandbox import MAX_RECORDED, SCENARIOS, SPECS, Sandbox
from synthetic.sandbox.scenarios import validate_scenario

ROOT = Path(__file__).resolve().parent.parent
METRIC_KEYS = {
    "totalRequests",
    "completedRequests",
    "failedRequests",
    "queueSize",
    "pendingRequests",
    "averageWaitTime",
    "averageExecutionTime",
}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

# Prometheus text exposition format 0.0.4, line by line.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
HELP_LINE = re.compile(rf"^# HELP ({_NAME}) \S.*$")
TYPE_LINE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")
SAMPLE_LINE = re.compile(
    rf"^({_NAME})(\{{{_LABEL}(?:,{_LABEL})*\}})? "
    r"(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)(?: -?\d+)?$"
)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(slow_delay_s=0.2) as running:
        yield running


def http_client(base_url: str = "") -> httpx.Client:
    """A plain-HTTP client (verify=False: no TLS context to build, tests stay fast)."""
    return httpx.Client(base_url=base_url, timeout=5.0, verify=False, trust_env=False)


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with http_client(sandbox.url) as http:
        yield http


def get_json(client: httpx.Client, path: str, status: int = 200) -> Any:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def parse_prometheus(text: str) -> dict[str, float]:
    """Check every line of an exposition; return {sample (with labels): value}."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helped: set[str] = set()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line:
            continue
        if match := HELP_LINE.match(line):
            assert match[1] not in helped, f"HELP twice: {line}"
            helped.add(match[1])
        elif match := TYPE_LINE.match(line):
            assert match[1] not in types, f"TYPE twice: {line}"
            types[match[1]] = match[2]
        else:
            match = SAMPLE_LINE.match(line)
            assert match, f"not a sample line: {line!r}"
            assert match[1] in types, f"sample before its TYPE: {line}"
            samples[match[1] + (match[2] or "")] = float(match[3])
    assert helped == set(types)
    return samples


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the healthy shapes ---------------------------------------------------


def test_scenarios_are_all_specified() -> None:
    assert tuple(SPECS) == SCENARIOS
    assert {"healthy", "degraded", "whmcs-backlog", "salesforce-quota"} <= set(SCENARIOS)
    assert {"slow", "errors", "down", "malformed"} <= set(SCENARIOS)
    assert all(spec.name == name for name, spec in SPECS.items())


def test_health_healthy(sandbox: Sandbox, client: httpx.Client) -> None:
    assert sandbox.scenario == "healthy"
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}"
    assert get_json(client, "/health") == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok"},
    }


def test_queues_healthy_shape(client: httpx.Client) -> None:
    body = get_json(client, "/health/queues")
    assert set(body) == {"timestamp", "whmcs", "salesforce"}
    assert ISO.match(body["timestamp"])
    assert set(body["whmcs"]) == {"health", "metrics"}
    assert set(body["salesforce"]) == {"health", "metrics", "dailyUsage"}
    for queue in ("whmcs", "salesforce"):
        assert body[queue]["health"] == "healthy"
        metrics = body[queue]["metrics"]
        assert set(metrics) == METRIC_KEYS
        assert all(type(value) is int for value in metrics.values())
        assert 0 <= metrics["queueSize"] <= 2
        assert metrics["totalRequests"] >= metrics["completedRequests"] + metrics["failedRequests"]
    assert body["salesforce"]["dailyUsage"] == {"used": 5000, "limit": 15000}


def test_queue_details_are_consistent_with_queues(client: httpx.Client) -> None:
    whmcs = get_json(client, "/health/queues/whmcs")
    salesforce = get_json(client, "/health/queues/salesforce")
    assert set(whmcs) == {"timestamp", "health", "metrics"}
    assert set(salesforce) == {"timestamp", "health", "metrics", "dailyUsage"}
    assert ISO.match(whmcs["timestamp"])
    assert whmcs["health"] == salesforce["health"] == "healthy"
    assert set(whmcs["metrics"]) == set(salesforce["metrics"]) == METRIC_KEYS
    both = get_json(client, "/health/queues")
    # The same cumulative counters: the combined fetch continues where the details left off.
    assert both["whmcs"]["metrics"]["totalRequests"] > whmcs["metrics"]["totalRequests"]
    assert both["salesforce"]["metrics"]["totalRequests"] > salesforce["metrics"]["totalRequests"]
    assert both["salesforce"]["dailyUsage"] == salesforce["dailyUsage"]


def test_catalog_cache_healthy(client: httpx.Client) -> None:
    body = get_json(client, "/health/catalog/cache")
    assert set(body) == {"timestamp", "status", "metrics"}
    assert body["status"] == "ok"
    assert set(body["metrics"]) == {"size", "hits", "misses", "hitRate", "ttlSeconds"}
    assert body["metrics"]["hitRate"] == pytest.approx(0.95)
    again = get_json(client, "/health/catalog/cache")["metrics"]
    assert again["hits"] > body["metrics"]["hits"]
    assert again["misses"] > body["metrics"]["misses"]


def test_auth_health_check_healthy(client: httpx.Client) -> None:
    body = get_json(client, "/auth/health-check")
    assert ISO.match(body.pop("timestamp"))
    assert body == {
        "status": "ok",
        "services": {"database": "ok", "whmcs": "ok", "salesforce": "ok"},
    }


def test_metrics_is_prometheus_text(client: httpx.Client) -> None:
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_prometheus(response.text)
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "nodejs_eventloop_lag_seconds",
        "nodejs_active_handles_total",
    ):
        assert name in samples
    assert samples["bff_http_max_connections"] == 200
    assert samples["bff_http_active_connections"] / samples["bff_http_max_connections"] == 0.2
    assert "# TYPE bff_http_active_connections gauge" in response.text.splitlines()
    assert samples['bff_http_requests_total{method="GET",route="/health",status_code="200"}'] == 1


def test_unknown_path_and_method_are_nest_404s(client: httpx.Client) -> None:
    assert get_json(client, "/x?y=1", 404) == {"statusCode": 404, "message": "Cannot GET /x"}
    response = client.post("/health", json={})
    assert response.status_code == 404
    assert response.json() == {"statusCode": 404, "message": "Cannot POST /health"}


def test_head_has_headers_and_no_body(client: httpx.Client) -> None:
    full = client.get("/health")
    head = client.head("/health")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == full.headers["content-length"]
    assert head.headers["content-type"] == full.headers["content-type"]


def test_trailing_slash_is_the_same_route(client: httpx.Client) -> None:
    assert get_json(client, "/health/")["status"] == "ok"


# -- the scenarios ----------------------------------------------------------


def test_degraded(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_scenario("degraded")
    assert get_json(client, "/health") == {
        "status": "degraded",
        "checks": {"database": "ok", "cache": "fail"},
    }
    whmcs = get_json(client, "/health/queues")["whmcs"]
    assert whmcs["health"] == "degraded"
    assert whmcs["metrics"]["queueSize"] == 12
    auth = get_json(client, "/auth/health-check")
    assert auth["status"] == "degraded"
    assert auth["services"]["salesforce"] == "degraded"
    assert auth["services"]["database"] == "ok"
    assert get_json(client, "/health/catalog/cache")["metrics"]["hitRate"] < 0.8
    samples = parse_prometheus(client.get("/metrics").text)
    assert samples["bff_http_active_connections"] / samples["bff_http_max_connections"] == 0.85


def test_whmcs_backlog() -> None:
    with Sandbox("whmcs-backlog") as backlog, http_client(backlog.url) as http:
        first = get_json(http, "/health/queues")
        second = get_json(http, "/health/queues/whmcs")
        assert get_json(http, "/health") == {
            "status": "ok",
            "checks": {"database": "ok", "cache": "ok"},
        }
    assert first["whmcs"]["health"] == second["health"] == "unhealthy"
    assert first["whmcs"]["metrics"]["queueSize"] == 57
    assert second["metrics"]["failedRequests"] - first["whmcs"]["metrics"]["failedRequests"] == 25
    assert first["salesforce"]["health"] == "healthy"
    assert first["salesforce"]["dailyUsage"] == {"used": 5000, "limit": 15000}


def test_salesforce_quota(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_scenario("salesforce-quota")
    salesforce = get_json(client, "/health/queues/salesforce")
    assert salesforce["health"] == "degraded"
    usage = salesforce["dailyUsage"]
    assert usage == {"used": 14500, "limit": 15000}
    assert usage["used"] / usage["limit"] > 0.95
    assert get_json(client, "/health/queues")["whmcs"]["health"] == "healthy"
    assert get_json(client, "/health")["status"] == "ok"


def test_errors(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_scenario("errors")
    assert get_json(client, "/health", 503) == {
        "status": "degraded",
        "checks": {"database": "fail", "cache": "ok"},
    }
    internal = {"statusCode": 500, "message": "Internal server error"}
    for path in (
        "/health/queues",
        "/health/queues/whmcs",
        "/health/queues/salesforce",
        "/health/catalog/cache",
    ):
        assert get_json(client, path, 500) == internal
    auth = get_json(client, "/auth/health-check")
    assert auth["status"] == "failing"
    assert auth["services"]["whmcs"] == "failing"
    assert client.get("/metrics").status_code == 200


def test_malformed(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_scenario("malformed")
    health = client.get("/health")
    assert health.status_code == 200
    assert health.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        health.json()
    queues = get_json(client, "/health/queues")
    assert "metrics" not in queues["whmcs"]
    assert isinstance(queues["whmcs"]["queueSize"], str)
    for path in (
        "/health/queues/whmcs",
        "/health/queues/salesforce",
        "/health/catalog/cache",
        "/auth/health-check",
    ):
        response = client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        with pytest.raises(json.JSONDecodeError):
            response.json()
    metrics = client.get("/metrics").text
    assert not metrics.endswith("\n")
    assert not SAMPLE_LINE.match(metrics.splitlines()[-1])


def test_slow_delays_each_response_but_not_admin(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_scenario("slow")
    started = time.monotonic()
    assert get_json(client, "/health")["status"] == "ok"
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 1.5
    started = time.monotonic()
    assert get_json(client, "/__sandbox/scenario")["scenario"] == "slow"
    assert time.monotonic() - started < 0.2


def test_down_resets_and_recovers(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_scenario("down")
    for path in ("/health", "/health/queues", "/metrics", "/nope"):
        with pytest.raises(httpx.TransportError):
            client.get(path)
    assert get_json(client, "/__sandbox/scenario")["scenario"] == "down"
    assert sandbox.requests[-2].status is None
    sandbox.set_scenario("healthy")
    assert get_json(client, "/health")["status"] == "ok"


# -- switching and state ------------------------------------------------------


def test_set_scenario_takes_effect_on_next_request(sandbox: Sandbox, client: httpx.Client) -> None:
    assert get_json(client, "/health")["status"] == "ok"
    sandbox.set_scenario("degraded")
    assert sandbox.scenario == "degraded"
    assert get_json(client, "/health")["status"] == "degraded"
    sandbox.set_scenario("healthy")
    assert get_json(client, "/health")["status"] == "ok"


def test_admin_endpoint_switches(sandbox: Sandbox, client: httpx.Client) -> None:
    assert get_json(client, "/__sandbox/scenario") == {
        "scenario": "healthy",
        "scenarios": list(SCENARIOS),
    }
    response = client.put("/__sandbox/scenario", json={"scenario": "whmcs-backlog"})
    assert response.status_code == 200
    assert response.json()["scenario"] == "whmcs-backlog"
    assert sandbox.scenario == "whmcs-backlog"
    assert get_json(client, "/health/queues/whmcs")["metrics"]["queueSize"] == 57
    assert client.post("/__sandbox/scenario", json={"scenario": "down"}).status_code == 200
    with pytest.raises(httpx.TransportError):
        client.get("/health")
    assert client.put("/__sandbox/scenario", json={"scenario": "healthy"}).status_code == 200
    assert get_json(client, "/health")["status"] == "ok"


@pytest.mark.parametrize(
    "body",
    [b'{"scenario": "nope"}', b"not json", b"[]", b'{"name": "healthy"}', b'{"scenario": 3}', b""],
)
def test_admin_rejects_bad_bodies(sandbox: Sandbox, client: httpx.Client, body: bytes) -> None:
    response = client.put("/__sandbox/scenario", content=body)
    assert response.status_code == 400
    error = response.json()
    assert error["statusCode"] == 400
    assert "\n" not in error["message"]
    assert sandbox.scenario == "healthy"


def test_counters_only_grow(client: httpx.Client) -> None:
    fetched = [get_json(client, "/health/queues") for _ in range(12)]
    for queue in ("whmcs", "salesforce"):
        series = [body[queue]["metrics"] for body in fetched]
        for before, after in itertools.pairwise(series):
            assert after["totalRequests"] > before["totalRequests"]
            assert after["completedRequests"] > before["completedRequests"]
            assert 0 <= after["failedRequests"] - before["failedRequests"] <= 1
    whmcs_failed = [body["whmcs"]["metrics"]["failedRequests"] for body in fetched]
    assert whmcs_failed[-1] > whmcs_failed[0]  # healthy still fails one now and then


def test_counters_survive_scenario_switches(sandbox: Sandbox, client: httpx.Client) -> None:
    before = get_json(client, "/health/queues/whmcs")["metrics"]
    sandbox.set_scenario("whmcs-backlog")
    backlog = get_json(client, "/health/queues/whmcs")["metrics"]
    sandbox.set_scenario("healthy")
    after = get_json(client, "/health/queues/whmcs")["metrics"]
    assert backlog["failedRequests"] == before["failedRequests"] + 25
    assert after["failedRequests"] >= backlog["failedRequests"]
    assert after["totalRequests"] > backlog["totalRequests"] > before["totalRequests"]
    assert after["queueSize"] <= 2


def test_concurrent_fetches_count_exactly(sandbox: Sandbox) -> None:
    def fetch() -> None:
        with http_client(sandbox.url) as http:
            for _ in range(10):
                http.get("/health/queues/whmcs").raise_for_status()

    with http_client(sandbox.url) as http:
        start = get_json(http, "/health/queues/whmcs")["metrics"]
        threads = [threading.Thread(target=fetch) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        end = get_json(http, "/health/queues/whmcs")["metrics"]
    # 41 fetches after the first, 12 completed each, one failure every 10th fetch.
    assert end["completedRequests"] - start["completedRequests"] == 41 * 12
    assert end["failedRequests"] - start["failedRequests"] == 4


# -- requests record ----------------------------------------------------------


def test_requests_record_the_correlation_id(sandbox: Sandbox, client: httpx.Client) -> None:
    response = client.get("/health?probe=1", headers={"X-Correlation-Id": "req-123"})
    assert response.headers["x-correlation-id"] == "req-123"
    last = sandbox.requests[-1]
    assert (last.method, last.path, last.status, last.scenario) == (
        "GET",
        "/health?probe=1",
        200,
        "healthy",
    )
    assert last.headers["X-Correlation-Id"] == "req-123"
    assert last.headers["x-correlation-id"] == "req-123"
    assert "X-CORRELATION-ID" in last.headers
    sandbox.clear_requests()
    assert sandbox.requests == []


def test_requests_are_bounded(sandbox: Sandbox) -> None:
    # Pipelined on one raw connection: much faster than a client round trip each.
    count = MAX_RECORDED + 5
    pipeline = b"".join(
        f"GET /nope/{index} HTTP/1.1\r\nHost: x\r\n".encode()
        + (b"Connection: close\r\n\r\n" if index == count - 1 else b"\r\n")
        for index in range(count)
    )
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(pipeline)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert answer.count(b"HTTP/1.1 404 Not Found") == count
    recorded = sandbox.requests
    assert len(recorded) == MAX_RECORDED
    assert recorded[0].path == "/nope/5"
    assert recorded[-1].path == f"/nope/{MAX_RECORDED + 4}"


def test_quiet_on_stderr(
    sandbox: Sandbox, client: httpx.Client, capfd: pytest.CaptureFixture[str]
) -> None:
    client.get("/health")
    client.get("/nope")
    sandbox.set_scenario("down")
    with pytest.raises(httpx.TransportError):
        client.get("/health")
    assert capfd.readouterr().err == ""


# -- construction and lifecycle -----------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="not a loopback address") as caught:
        Sandbox(host=host)
    assert host in str(caught.value)
    assert "\n" not in str(caught.value)


def test_refuses_unknown_scenario(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown sandbox scenario 'nope'") as caught:
        Sandbox("nope")
    message = str(caught.value)
    assert "\n" not in message
    assert all(name in message for name in SCENARIOS)
    with pytest.raises(ValueError, match="'nope'"):
        sandbox.set_scenario("nope")
    with pytest.raises(ValueError, match="unknown"):
        validate_scenario(None)
    assert sandbox.scenario == "healthy"


@pytest.mark.parametrize("kwargs", [{"port": -1}, {"port": 70000}, {"slow_delay_s": -1.0}])
def test_refuses_bad_port_and_delay(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="sandbox"):
        Sandbox(**kwargs)


@pytest.mark.parametrize(("host", "url_host"), [("localhost", "127.0.0.1"), ("::1", "[::1]")])
def test_other_loopback_hosts(host: str, url_host: str) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        sandbox = Sandbox(host=host).start()
    except OSError as exc:
        pytest.skip(f"cannot bind {host}: {exc}")
    with sandbox, http_client(sandbox.url) as http:
        assert sandbox.url == f"http://{url_host}:{sandbox.port}"
        assert get_json(http, "/health")["status"] == "ok"


def test_fixed_port(sandbox: Sandbox) -> None:
    port = unused_port()
    with Sandbox(port=port) as fixed, http_client() as http:
        assert fixed.port == port
        assert http.get(f"http://127.0.0.1:{port}/health").status_code == 200
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            Sandbox(port=port).start()


def test_stop_is_idempotent_and_releases_the_port() -> None:
    sandbox = Sandbox().start()
    assert sandbox.start() is sandbox  # already running: a no-op
    port = sandbox.port
    with http_client(sandbox.url) as http:
        assert http.get("/health").status_code == 200
        sandbox.stop()
        sandbox.stop()
        with pytest.raises(httpx.ConnectError):
            http.get("/health")
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))
    with pytest.raises(RuntimeError, match="stopped"):
        sandbox.start()
    never_started = Sandbox()
    never_started.stop()


def test_stop_is_prompt_with_requests_in_flight() -> None:
    sandbox = Sandbox("slow", slow_delay_s=30.0).start()
    idle = socket.create_connection(("127.0.0.1", sandbox.port))  # a keep-alive idler
    errors: list[Exception] = []

    def slow_get() -> None:
        try:
            with http_client() as http:
                http.get(f"{sandbox.url}/health", timeout=10.0)
        except httpx.TransportError as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow_get)
    thread.start()
    time.sleep(0.3)  # the request is in its 30 s delay (it is recorded only once answered)
    started = time.monotonic()
    sandbox.stop()
    thread.join(5)
    with idle:
        assert idle.recv(1) == b""  # the idle connection was closed too
    assert time.monotonic() - started < 2.0
    assert not thread.is_alive()
    assert len(errors) == 1


def test_serve_prints_the_url_and_stops_on_sigterm() -> None:
    code = "from synthetic.sandbox import serve; serve('degraded', '127.0.0.1', 0)"
    with subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert match, line
            with http_client(match[0]) as http:
                body = http.get("/health").json()
            assert body["status"] == "degraded"
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    assert stderr == ""
    assert line.count("\n") == 1
