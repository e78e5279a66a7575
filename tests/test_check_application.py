"""checks/check_application.py run as a user runs it: pytest on the real check file,
against the sandbox, a tiny Prometheus endpoint and a real prom-client app
(tests/node/prom_metrics.js) on loopback; and the Prometheus helpers of
synthetic/measure/prometheus.py.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterator
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# httpx imports httpcore lazily and caches its exception map on first use. pytester's
# in-process runs unload modules first imported inside them, so a second run would get
# a fresh httpcore whose errors httpx no longer maps (a raw httpcore.ReadError instead
# of httpx.ReadError, UNKNOWN instead of unreachable). Importing it here keeps one.
import httpcore  # noqa: F401
import pytest
from prometheus_client.parser import text_string_to_metric_families

from checks.check_application import nearest_rank
from synthetic.errors import MeasurementError
from synthetic.measure.prometheus import fetch_samples, gauge_value, parse
from synthetic.sandbox import SCENARIOS, SPECS, Sandbox
from synthetic.sandbox.app import Bff
from tests.support.catalogue_runs import environment_toml, run_check_file, toml_value
from tests.support.node_apps import node_program

REPO = Path(__file__).resolve().parent.parent
CHECKS = REPO / "checks" / "check_application.py"
P95 = "check_response_time_p95"
CONNECTIONS = "check_active_connections"
P95_PATHS = ["/health", "/health/queues", "/auth/health-check"]

# -- helpers ----------------------------------------------------------------------------------


def write_config(
    pytester: pytest.Pytester,
    base_url: str | None,
    *,
    thresholds: dict[str, dict[str, str]] | None = None,
    **keys: Any,
) -> Path:
    """``synthetic.toml`` with one environment, ``test``; a key set to None is left out."""
    settings: dict[str, Any] = {
        "base_url": base_url,
        "timeout_s": 3,
        "retries": 0,
        "p95_sample_size": 7,
        "p95_paths": P95_PATHS,
        "connection_capacity": 200,
    }
    settings.update(keys)
    lines = environment_toml("test", settings)
    for metric, levels in (thresholds or {}).items():
        lines.append(f'[environments.test.thresholds."{metric}"]')
        lines += [f"{level} = {toml_value(text)}" for level, text in levels.items()]
    path = pytester.path / "synthetic.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_check(pytester: pytest.Pytester, config: Path, check: str) -> dict[str, Any]:
    """Run one check of checks/check_application.py; its entry of results.json (and run_id)."""
    results, document = run_check_file(pytester, CHECKS, config, "-k", check)
    [result] = results.values()
    assert result["id"].endswith(f"::{check}")
    result["run_id"] = document["run_id"]
    return dict(result)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox("healthy", slow_delay_s=0.15) as running:
        yield running


class MetricsEndpoint:
    """A tiny Prometheus endpoint whose exposition the test sets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.body = ""
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []

    def connections(self, active: float, maximum: int = 200) -> None:
        """Node.js-style text with the BFF's two connection gauges."""
        self.body = (
            "# HELP nodejs_active_handles_total Total number of active handles.\n"
            "# TYPE nodejs_active_handles_total gauge\n"
            "nodejs_active_handles_total 42\n"
            "# HELP bff_http_active_connections Number of open HTTP connections.\n"
            "# TYPE bff_http_active_connections gauge\n"
            f"bff_http_active_connections {active}\n"
            "# HELP bff_http_max_connections Maximum number of HTTP connections.\n"
            "# TYPE bff_http_max_connections gauge\n"
            f"bff_http_max_connections {maximum}\n"
        )


@pytest.fixture
def metrics() -> Iterator[MetricsEndpoint]:
    endpoint: MetricsEndpoint

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            endpoint.paths.append(self.path)
            endpoint.headers.append(dict(self.headers))
            body = endpoint.body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint = MetricsEndpoint(f"http://127.0.0.1:{server.server_address[1]}/metrics")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- app.response_time_p95 ----------------------------------------------------------------------

P95_LIMITS = {"app.response_time_p95": {"warning": "> 100ms", "critical": "> 300ms"}}


def test_p95_burst_is_real_round_robin_requests_with_the_correlation_id(
    pytester: pytest.Pytester, sandbox: Sandbox
) -> None:
    # Limits far above a loaded CI machine's loopback latency: this test is
    # about the burst, the thresholds are pinned by the tests below.
    limits = {"app.response_time_p95": {"warning": "> 1s", "critical": "> 3s"}}
    config = write_config(pytester, sandbox.url, thresholds=limits)
    result = run_check(pytester, config, P95)
    assert result["severity"] == "ok", result["reason"]
    assert result["metric"] == "app.response_time_p95"
    assert result["unit"] == "ms"
    assert (result["warning"], result["critical"]) == ("> 1s", "> 3s")
    assert (result["priority"], result["component"]) == ("P3", "bff")
    assert result["runbook"].endswith("incident-response")
    assert 0 < result["value"] < 1000

    burst = sandbox.requests
    assert len(burst) == 7  # every request reached the sandbox: no snapshot cache
    assert {r.method for r in burst} == {"GET"}
    assert Counter(r.path for r in burst) == {
        "/health": 3,
        "/health/queues": 2,
        "/auth/health-check": 2,
    }
    expected_id = f"synthetic-{result['run_id']}-{P95}"
    assert {r.headers["X-Correlation-Id"] for r in burst} == {expected_id}

    evidence = result["evidence"]
    assert evidence["method"] == "nearest-rank"
    assert evidence["requests"] == 7
    assert evidence["concurrency"] == 7
    assert evidence["non_2xx"] == 0
    assert evidence["overall"]["statuses"] == {"200": 7}
    assert evidence["overall"]["p95_ms"] == result["value"]
    assert {path: stats["count"] for path, stats in evidence["paths"].items()} == {
        "/health": 3,
        "/health/queues": 2,
        "/auth/health-check": 2,
    }
    for stats in evidence["paths"].values():
        assert stats["min_ms"] <= stats["median_ms"] <= stats["p95_ms"] <= stats["max_ms"]


def test_p95_warning_when_every_response_is_delayed(
    pytester: pytest.Pytester, sandbox: Sandbox
) -> None:
    sandbox.set_scenario("slow")  # 150 ms per response
    # A critical level far above the delay: a loaded CI machine adds latency
    # to loopback requests (338 ms was seen against a 300 ms limit).
    limits = {"app.response_time_p95": {"warning": "> 100ms", "critical": "> 5s"}}
    config = write_config(pytester, sandbox.url, thresholds=limits, p95_sample_size=10)
    result = run_check(pytester, config, P95)
    assert result["severity"] == "warning", result["reason"]
    assert 150 <= result["value"] < 5000
    assert result["reason"].endswith("(warning > 100ms)")
    assert len(sandbox.requests) == 10


def test_p95_critical_when_slower_still(pytester: pytest.Pytester) -> None:
    with Sandbox("slow", slow_delay_s=0.4) as slower:
        config = write_config(pytester, slower.url, thresholds=P95_LIMITS, p95_sample_size=8)
        result = run_check(pytester, config, P95)
    assert result["severity"] == "critical", result["reason"]
    assert result["value"] >= 400
    assert result["reason"].endswith("(critical > 300ms)")


def test_p95_counts_error_answers_and_shows_their_statuses(
    pytester: pytest.Pytester, sandbox: Sandbox
) -> None:
    sandbox.set_scenario("errors")  # /health 503, /health/queues 500, /auth/health-check 200
    config = write_config(pytester, sandbox.url, thresholds=P95_LIMITS, p95_sample_size=6)
    result = run_check(pytester, config, P95)
    assert result["severity"] == "ok", result["reason"]
    evidence = result["evidence"]
    assert evidence["non_2xx"] == 4
    assert evidence["overall"]["statuses"] == {"200": 2, "500": 2, "503": 2}
    assert evidence["paths"]["/health"]["statuses"] == {"503": 2}
    assert evidence["paths"]["/health/queues"]["statuses"] == {"500": 2}
    assert len(sandbox.requests) == 6


def test_p95_down_is_critical_unreachable(pytester: pytest.Pytester, sandbox: Sandbox) -> None:
    sandbox.set_scenario("down")
    config = write_config(pytester, sandbox.url, thresholds=P95_LIMITS)
    result = run_check(pytester, config, P95)
    assert result["severity"] == "critical"
    assert "unreachable" in result["reason"]
    assert result["value"] is None


def test_p95_guide_thresholds_against_the_sandbox(
    pytester: pytest.Pytester, sandbox: Sandbox
) -> None:
    config = write_config(pytester, sandbox.url, p95_sample_size=4)
    result = run_check(pytester, config, P95)
    assert (result["severity"], result["warning"], result["critical"]) == ("ok", "> 2s", "> 5s")


# -- app.active_connections ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("active", "severity"),
    [
        (159, "ok"),
        (160, "ok"),  # 80% exactly: not above the warning
        (161, "warning"),
        (189, "warning"),
        (190, "warning"),  # 95% exactly: not above the critical
        (191, "critical"),
    ],
)
def test_connections_around_the_thresholds(
    pytester: pytest.Pytester,
    sandbox: Sandbox,
    metrics: MetricsEndpoint,
    active: int,
    severity: str,
) -> None:
    metrics.connections(active)
    config = write_config(pytester, sandbox.url, metrics_url=metrics.url)
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == severity, result["reason"]
    assert result["value"] == pytest.approx(active / 2)
    assert (result["unit"], result["warning"], result["critical"]) == ("%", "> 80%", "> 95%")
    assert (result["priority"], result["component"]) == ("P2", "bff")
    assert result["runbook"].endswith("incident-response")
    assert result["evidence"] == {
        "metric": "bff_http_active_connections",
        "connections": active,
        "capacity": 200,
    }
    assert metrics.paths == ["/metrics"]  # once per run, from metrics_url (not base_url)
    assert sandbox.requests == []


def test_connections_metric_and_capacity_are_configurable(
    pytester: pytest.Pytester, sandbox: Sandbox, metrics: MetricsEndpoint
) -> None:
    metrics.connections(30, maximum=50)
    config = write_config(
        pytester,
        sandbox.url,
        metrics_url=metrics.url,
        connections_metric="bff_http_max_connections",
        connection_capacity=50,
    )
    result = run_check(pytester, config, CONNECTIONS)
    assert result["value"] == 100
    assert result["severity"] == "critical"


def test_connections_metric_absent_is_unknown_naming_it(
    pytester: pytest.Pytester, sandbox: Sandbox, metrics: MetricsEndpoint
) -> None:
    metrics.connections(40)
    config = write_config(
        pytester, sandbox.url, metrics_url=metrics.url, connections_metric="http_open_sockets"
    )
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == "unknown"
    assert f"GET {metrics.url} has no metric http_open_sockets" in result["reason"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("bff_http_active_connections NaN\n", "bff_http_active_connections is NaN"),
        ("bff_http_active_connections 12\nbff_http", "is not valid Prometheus text format"),
        ("<!DOCTYPE html><html><body>Login</body></html>", "is not valid Prometheus text"),
        (
            'bff_http_active_connections{worker="1"} 3\n'
            'bff_http_active_connections{worker="2"} 4\n',
            "has 2 series matching bff_http_active_connections",
        ),
    ],
)
def test_connections_unusable_exposition_is_unknown(
    pytester: pytest.Pytester,
    sandbox: Sandbox,
    metrics: MetricsEndpoint,
    body: str,
    expected: str,
) -> None:
    metrics.body = body
    config = write_config(pytester, sandbox.url, metrics_url=metrics.url)
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == "unknown"
    assert expected in result["reason"]
    assert result["reason"].startswith("app.active_connections: ")


@pytest.mark.parametrize("missing", ["metrics_url", "connection_capacity"])
def test_connections_skipped_when_not_configured(
    pytester: pytest.Pytester, sandbox: Sandbox, missing: str
) -> None:
    keys: dict[str, Any] = {"metrics_url": sandbox.url + "/metrics", missing: None}
    config = write_config(pytester, sandbox.url, **keys)
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == "skipped"
    assert f"{missing} is not configured for environment 'test'" in result["reason"]
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("scenario", "severity", "value"),
    [
        ("healthy", "ok", 20.0),
        ("degraded", "warning", 85.0),
        ("errors", "critical", 97.5),
        ("down", "critical", None),
        ("malformed", "unknown", None),
    ],
)
def test_connections_against_the_sandbox_scenarios(
    pytester: pytest.Pytester,
    sandbox: Sandbox,
    scenario: str,
    severity: str,
    value: float | None,
) -> None:
    sandbox.set_scenario(scenario)
    config = write_config(pytester, sandbox.url, metrics_url=sandbox.url + "/metrics")
    result = run_check(pytester, config, CONNECTIONS)
    assert (result["severity"], result["value"]) == (severity, value), result["reason"]
    if scenario == "down":
        assert "unreachable" in result["reason"]
    if scenario == "malformed":
        assert "not valid Prometheus text format" in result["reason"]
    fetched = [r for r in sandbox.requests if r.path == "/metrics"]
    assert len(fetched) == 1
    assert fetched[0].headers["X-Correlation-Id"] == f"synthetic-{result['run_id']}-{CONNECTIONS}"


def test_every_scenario_reports_connections_against_the_guide() -> None:
    """Without sockets: the sandbox's /metrics per scenario, read by synthetic.measure."""
    expected = {"healthy": 20.0, "degraded": 85.0, "errors": 97.5}
    for name in SCENARIOS:
        reply = Bff(name).handle("GET", "/metrics")
        if SPECS[name].mode == "down":
            assert reply.drop
            continue
        text = reply.body.decode()
        if SPECS[name].mode == "malformed":
            with pytest.raises(MeasurementError, match="not valid Prometheus text format"):
                gauge_value(text, "bff_http_active_connections")
            continue
        active = gauge_value(text, "bff_http_active_connections")
        capacity = gauge_value(text, "bff_http_max_connections")
        assert active / capacity * 100 == expected.get(name, 20.0), name


# -- app.active_connections: selectors against a real prom-client app, metrics_url alone ---------

PUBLIC_HELD, ADMIN_HELD = 7, 3
CAPACITY = 20


def hold_connection(port: int) -> HTTPConnection:
    """A keep-alive connection to ``port`` that has had its answer: the server has it open."""
    connection = HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"ok"
    return connection


@pytest.fixture(scope="module")
def prom_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tests/node/prom_metrics.js with PUBLIC_HELD connections held open to its public
    listener and ADMIN_HELD to its admin one; its metrics URL."""
    log = tmp_path_factory.mktemp("prom") / "prom_metrics.log"
    with node_program("prom_metrics.js", packages=("prom-client",), log=log) as ports:
        held = [hold_connection(ports["public"]) for _ in range(PUBLIC_HELD)]
        held += [hold_connection(ports["admin"]) for _ in range(ADMIN_HELD)]
        try:
            yield f"http://127.0.0.1:{ports['metrics']}/metrics"
        finally:
            for connection in held:
                connection.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("selector", "connections"),
    [
        ('bff_http_active_connections{server="public"}', PUBLIC_HELD),
        ('bff_http_active_connections{server!="public"}', ADMIN_HELD),
        ('bff_http_active_connections{server=~"adm.*"}', ADMIN_HELD),
        ('bff_http_active_connections{server!~"adm.*"}', PUBLIC_HELD),
        ("sum(bff_http_active_connections)", PUBLIC_HELD + ADMIN_HELD),
        ("max(bff_http_active_connections)", max(PUBLIC_HELD, ADMIN_HELD)),
        ("min(bff_http_active_connections)", min(PUBLIC_HELD, ADMIN_HELD)),
        ("avg(bff_http_active_connections)", (PUBLIC_HELD + ADMIN_HELD) / 2),
    ],
)
def test_connections_selector_against_prom_client(
    pytester: pytest.Pytester, prom_app: str, selector: str, connections: float
) -> None:
    # No base_url: an absolute metrics_url is enough.
    config = write_config(
        pytester,
        None,
        metrics_url=prom_app,
        connections_metric=selector,
        connection_capacity=CAPACITY,
    )
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == "ok", result["reason"]
    assert result["value"] == pytest.approx(connections / CAPACITY * 100)
    assert result["evidence"]["connections"] == pytest.approx(connections)
    assert result["evidence"]["metric"] == selector
    if selector.startswith(("sum", "max", "min", "avg")):
        assert result["evidence"]["series"] == {
            'bff_http_active_connections{server="public"}': PUBLIC_HELD,
            'bff_http_active_connections{server="admin"}': ADMIN_HELD,
        }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("selector", "reason"),
    [
        (
            "bff_http_active_connections",
            "has 2 series matching bff_http_active_connections "
            '(bff_http_active_connections{server="public"}, '
            'bff_http_active_connections{server="admin"}); labels are needed to choose one, '
            "or an aggregation such as sum(bff_http_active_connections)",
        ),
        (
            'bff_http_active_connections{server=~"pub"}',  # anchored: "pub" is not "public"
            'has no series matching bff_http_active_connections{server=~"pub"} '
            '(bff_http_active_connections has: {server="public"}, {server="admin"})',
        ),
        (
            "sum(bff_http_open_connections)",
            "has no metric bff_http_open_connections (similar: bff_http_active_connections)",
        ),
    ],
)
def test_connections_selector_that_selects_no_single_value_is_unknown(
    pytester: pytest.Pytester, prom_app: str, selector: str, reason: str
) -> None:
    config = write_config(pytester, None, metrics_url=prom_app, connections_metric=selector)
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == "unknown"
    assert result["reason"] == f"app.active_connections: GET {prom_app} {reason}"


SECRET_HEADERS = {"Authorization": "Bearer 5ecr3t-t0ken", "X-Api-Key": "k3y-v4lue"}


@pytest.mark.parametrize("same_origin", [True, False])
def test_headers_go_to_metrics_url_only_on_the_target_origin(
    pytester: pytest.Pytester,
    sandbox: Sandbox,
    metrics: MetricsEndpoint,
    same_origin: bool,
) -> None:
    metrics.connections(40)
    base_url = metrics.url.removesuffix("/metrics") if same_origin else sandbox.url
    config = write_config(pytester, base_url, metrics_url=metrics.url, headers=SECRET_HEADERS)
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == "ok", result["reason"]
    [sent] = metrics.headers
    assert sent["X-Correlation-Id"] == f"synthetic-{result['run_id']}-{CONNECTIONS}"
    for name, value in SECRET_HEADERS.items():
        assert sent.get(name) == (value if same_origin else None)


def test_metrics_url_without_base_url_is_the_target_and_gets_the_headers(
    pytester: pytest.Pytester, metrics: MetricsEndpoint
) -> None:
    metrics.connections(50)
    config = write_config(pytester, None, metrics_url=metrics.url, headers=SECRET_HEADERS)
    result = run_check(pytester, config, CONNECTIONS)
    assert (result["severity"], result["value"]) == ("ok", 25.0)
    [sent] = metrics.headers
    for name, value in SECRET_HEADERS.items():
        assert sent[name] == value


def test_neither_base_url_nor_metrics_url_skips(pytester: pytest.Pytester) -> None:
    config = write_config(pytester, None)
    result = run_check(pytester, config, CONNECTIONS)
    assert result["severity"] == "skipped"
    assert result["reason"].endswith(
        "neither base_url nor metrics_url is configured for environment 'test'"
    )


# -- nearest rank --------------------------------------------------------------------------------


def test_nearest_rank_percentile() -> None:
    twenty = [float(v) for v in range(20, 0, -1)]
    assert nearest_rank(twenty, 95) == 19  # ceil(0.95 * 20) = 19th smallest
    assert nearest_rank(twenty[:10], 95) == 20  # ten samples: the slowest
    assert nearest_rank([float(v) for v in range(1, 101)], 95) == 95
    assert nearest_rank([1.0, 2.0, 3.0, 4.0], 50) == 2
    assert nearest_rank([7.0], 95) == 7
    assert nearest_rank([3.0, 1.0, 2.0], 100) == 3
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 95)


# -- synthetic.measure.prometheus -------------------------------------------------------------

EXPOSITION = """\
# HELP bff_http_active_connections Number of open HTTP connections.
# TYPE bff_http_active_connections gauge
bff_http_active_connections 40
# HELP bff_http_requests_total Total number of HTTP requests served.
# TYPE bff_http_requests_total counter
bff_http_requests_total{method="GET",route="/health",status_code="200"} 12
bff_http_requests_total{method="GET",route="/health",status_code="503"} 2
bff_http_requests_total{method="GET",route="/metrics",status_code="200"} 5
# HELP pool_usage_ratio Pool usage.
# TYPE pool_usage_ratio gauge
pool_usage_ratio{pool="main"} 0.25
pool_usage_ratio{pool="replica"} NaN
# HELP up_since_seconds Start.
# TYPE up_since_seconds gauge
up_since_seconds +Inf
"""


def test_gauge_value_without_labels() -> None:
    assert gauge_value(EXPOSITION, "bff_http_active_connections") == 40.0
    assert isinstance(gauge_value(EXPOSITION, "bff_http_active_connections"), float)


def test_gauge_value_with_labels_picks_one_series() -> None:
    assert gauge_value(EXPOSITION, "pool_usage_ratio", {"pool": "main"}) == 0.25
    labels = {"route": "/health", "status_code": "503"}  # a subset of the series' labels
    assert gauge_value(EXPOSITION, "bff_http_requests_total", labels) == 2


def test_gauge_value_several_series_need_labels() -> None:
    with pytest.raises(MeasurementError) as caught:
        gauge_value(EXPOSITION, "bff_http_requests_total")
    message = str(caught.value)
    assert "has 3 series matching bff_http_requests_total" in message
    assert "labels are needed to choose one, or an aggregation such as sum(" in message
    assert "\n" not in message
    with pytest.raises(MeasurementError, match="has 2 series matching"):
        gauge_value(EXPOSITION, "bff_http_requests_total", {"route": "/health"})


def test_gauge_value_absent_names_the_metric_and_labels() -> None:
    with pytest.raises(MeasurementError, match=r"^metrics text has no metric nope_total$"):
        gauge_value(EXPOSITION, "nope_total")
    with pytest.raises(MeasurementError) as caught:
        gauge_value(EXPOSITION, "pool_usage_ratio", {"pool": "standby"})
    assert str(caught.value) == (
        'metrics text has no series matching pool_usage_ratio{pool="standby"} '
        '(pool_usage_ratio has: {pool="main"}, {pool="replica"})'
    )
    # Close names first, then the others of the same prefix (bff_http_).
    similar = r"^GET /x has no metric bff_http_requests \(similar: bff_http_requests_total, "
    similar += r"bff_http_active_connections\)$"
    with pytest.raises(MeasurementError, match=similar):
        gauge_value(EXPOSITION, "bff_http_requests", source="GET /x")  # family, not sample name


def test_gauge_value_not_a_number() -> None:
    with pytest.raises(MeasurementError, match=r'pool_usage_ratio\{pool="replica"\} is NaN$'):
        gauge_value(EXPOSITION, "pool_usage_ratio", {"pool": "replica"})
    with pytest.raises(MeasurementError, match=r"up_since_seconds is \+Inf$"):
        gauge_value(EXPOSITION, "up_since_seconds")


@pytest.mark.parametrize(
    "text",
    [
        EXPOSITION + "bff_http_active_conn",  # truncated inside a name, as the sandbox does
        "bff_http_active_connections forty\n",
        'bff_http_active_connections{route="/health} 1\n',
        "# TYPE bff_http_active_connections\n",
        "<!DOCTYPE html>\n<html><body>Scheduled maintenance</body></html>\n",
    ],
)
def test_unparsable_text_is_a_measurement_error(text: str) -> None:
    with pytest.raises(MeasurementError, match=r"^GET /metrics is not valid Prometheus text") as e:
        gauge_value(text, "bff_http_active_connections", source="GET /metrics")
    assert "\n" not in str(e.value)


def test_the_sandbox_malformed_exposition_does_not_parse() -> None:
    text = Bff("malformed").handle("GET", "/metrics").body.decode()
    with pytest.raises(MeasurementError, match="not valid Prometheus text format"):
        parse(text)


def test_fetch_samples_from_text_or_parsed_families() -> None:
    families = parse(EXPOSITION)
    reference = list(text_string_to_metric_families(EXPOSITION))
    assert [(f.name, f.type, len(f.samples)) for f in families] == [
        (f.name, f.type, len(f.samples)) for f in reference
    ]
    from_text = fetch_samples(EXPOSITION, "bff_http_requests_total", {"route": "/health"})
    from_families = fetch_samples(families, "bff_http_requests_total", {"route": "/health"})
    assert from_text == from_families
    assert [s.labels["status_code"] for s in from_text] == ["200", "503"]
    assert fetch_samples(families, "missing") == []
    assert gauge_value(families, "bff_http_active_connections") == 40
    nan = fetch_samples(families, "pool_usage_ratio", {"pool": "replica"})
    assert len(nan) == 1
    assert math.isnan(nan[0].value)


def test_empty_text_has_no_metric() -> None:
    assert parse("") == []
    with pytest.raises(MeasurementError, match="has no metric up"):
        gauge_value("", "up")
