"""Odd numbers: NaN, infinities, numbers past a double, negative counters.

A monitor must never read them as a healthy value: a value it cannot use
is UNKNOWN naming the field, a counter that is not a counter is never kept
as the next run's baseline, and a log line with an odd number still counts
(its level, its status), without that number.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from synthetic.errors import MeasurementError
from synthetic.logs.analysis import analyse
from synthetic.logs.metrics import LogMetrics
from synthetic.logs.settings import LogsSettings
from synthetic.state import Samples
from tests.support.catalogue_runs import CHECKS, run_check_file
from tests.support.logs_helpers import NOW_MS

SETTINGS = LogsSettings()
INI = """
[pytest]
python_files = check_*.py
python_functions = check_*
"""

# Written as a BFF's JSON encoder may write them (JavaScript's JSON.stringify
# writes null, but Python's json.dumps, many loggers and hand-made lines do not).
ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 5000]


def _line(level: int, status: int, duration: str) -> str:
    return (
        f'{{"level":{level},"time":{NOW_MS},"method":"GET","path":"/api/x",'
        f'"statusCode":{status},"duration":{duration},"msg":"request"}}'
    )


def _analysed(tmp_path: Path, lines: list[str]) -> LogMetrics:
    log = tmp_path / "combined.log"
    log.write_text("".join(line + "\n" for line in lines))
    document = analyse([str(log)], SETTINGS, None, now_ms=NOW_MS)
    return LogMetrics(json.loads(json.dumps(document)), SETTINGS)


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_error_lines_with_an_odd_number_still_count(tmp_path: Path, odd: str) -> None:
    errors = [_line(50, 500, odd) for _ in range(40)]
    fine = [_line(30, 200, "120") for _ in range(10)]

    result = _analysed(tmp_path, errors + fine)

    counted = result.error_count()
    assert counted.value == 40
    # The lines are kept as evidence, parsed, and still valid JSON.
    kept = counted.evidence["latest_errors"]
    assert kept
    assert all(entry["line"]["level"] == 50 for entry in kept)
    json.dumps(counted.evidence, allow_nan=False)
    assert result.error_rate().value == pytest.approx(40 / 50 * 100)
    # The odd durations are left out, not read as a number: the p95 is the fine lines'.
    p95 = result.response_time_p95().value
    assert math.isfinite(p95)
    assert p95 == pytest.approx(120, rel=0.02)


def test_an_odd_number_in_the_status_leaves_the_level(tmp_path: Path) -> None:
    lines = [
        f'{{"level":50,"time":{NOW_MS},"path":"/a","statusCode":NaN,"duration":5}}',
        f'{{"level":50,"time":{NOW_MS},"path":"/a","statusCode":Infinity,"duration":5}}',
        f'{{"level":30,"time":{NOW_MS},"path":"/a","statusCode":200,"duration":5}}',
    ]

    result = _analysed(tmp_path, lines)

    assert result.error_count().value == 2
    assert result.run["skipped"] == 0


# -- values a check returns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "shown"),
    [
        ("float('inf')", "infinite (+inf)"),
        ("-float('inf')", "infinite (-inf)"),
        ("float('nan')", "NaN"),
        ("Measurement(float('inf'), unit='s')", "infinite (+inf)"),
        ("decimal.Decimal('Infinity')", "infinite (+inf)"),
        ("decimal.Decimal('sNaN')", "NaN"),
    ],
)
def test_a_non_finite_value_is_unknown(
    pytester: pytest.Pytester, returned: str, shown: str
) -> None:
    pytester.makeini(INI)
    pytester.makefile(".toml", synthetic="")  # a project using synthetic has a config
    pytester.makepyfile(
        check_odd=f"""
        import decimal, pytest
        from synthetic import Measurement

        @pytest.mark.metric("queue", unit="ms")
        @pytest.mark.warning("> 10")
        @pytest.mark.critical("< 0")
        def check_odd():
            return {returned}
        """
    )
    pytester.runpytest("-p", "no:cacheprovider")
    [check] = json.loads((pytester.path / "synthetic-results" / "results.json").read_text())[
        "checks"
    ]
    assert check["severity"] == "unknown"
    assert check["reason"].startswith("queue: the value is ")
    assert shown in check["reason"]
    assert check["value"] is None


# -- counters kept between runs --------------------------------------------------------------


@pytest.mark.parametrize("odd", [math.inf, -math.inf, math.nan])
def test_a_non_finite_sample_is_never_recorded(odd: float) -> None:
    samples = Samples({})
    with pytest.raises(MeasurementError, match="evicted_keys"):
        samples.record("evicted_keys", odd)
    assert samples.recorded == {}


@pytest.mark.parametrize("odd", [-1.0, -math.inf, math.inf, math.nan])
def test_a_counter_that_is_not_a_counter_is_not_a_baseline(odd: float) -> None:
    samples = Samples({})
    with pytest.raises(MeasurementError, match="failedRequests"):
        samples.increase("failedRequests", odd)
    assert samples.recorded == {}


@pytest.mark.parametrize("stored", ["Infinity", "-Infinity", "NaN", "-40", "1e400"])
def test_a_bad_baseline_left_by_an_older_run_is_ignored(stored: str) -> None:
    # As the state file would hold it (json.dump writes Infinity and NaN).
    previous = json.loads(f'{{"failedRequests": {{"value": {stored}, "at": 1000.0}}}}')
    samples = Samples(previous, now=1060.0)

    # A healthy run starts afresh: a new baseline, no false increase.
    assert samples.increase("failedRequests", 12) is None
    assert samples.recorded["failedRequests"]["value"] == 12
    assert Samples(previous, now=1060.0).rate("failedRequests", 12) is None


# -- values read from a body, through the catalogue's queue checks ----------------------------


class BodyServer:
    """A loopback endpoint answering every GET with ``body``, as written (so it
    may hold JSON's NaN and Infinity, which no encoder of ours writes)."""

    def __init__(self) -> None:
        self.body = "{}"
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = server.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def body_server() -> Iterator[BodyServer]:
    server = BodyServer()
    yield server
    server.close()


def queues_body(whmcs_size: str = "3", whmcs_failed: str = "10", used: str = "5") -> str:
    return (
        f'{{"whmcs": {{"metrics": {{"queueSize": {whmcs_size},'
        f' "failedRequests": {whmcs_failed}}}}},'
        ' "salesforce": {"metrics": {"queueSize": 1, "failedRequests": 0},'
        f' "dailyUsage": {{"used": {used}, "limit": 100}}}}}}'
    )


def run_queues(pytester: pytest.Pytester, url: str) -> dict[str, dict[str, Any]]:
    config = pytester.path / "synthetic.toml"
    config.write_text(f'[environments.test]\nbase_url = "{url}"\nretries = 0\n')
    results, _ = run_check_file(
        pytester, CHECKS / "check_queues.py", config, "-k", "queue_size or failed or daily"
    )
    return {name.removeprefix("check_"): check for name, check in results.items()}


def stored_samples(pytester: pytest.Pytester) -> dict[str, Any]:
    state = json.loads((pytester.path / "out" / "state-test.json").read_text())
    samples: dict[str, Any] = state["samples"]
    return samples


@pytest.mark.parametrize("odd", ["Infinity", "-Infinity", "NaN", "1e400", "-3"])
def test_an_odd_queue_size_is_unknown_naming_the_field(
    pytester: pytest.Pytester, body_server: BodyServer, odd: str
) -> None:
    body_server.body = queues_body(whmcs_size=odd, used=odd)

    found = run_queues(pytester, body_server.url)

    for check, field in (
        ("whmcs_queue_size", "whmcs.metrics.queueSize"),
        ("salesforce_daily_api_usage", "salesforce.dailyUsage.used"),
    ):
        assert found[check]["severity"] == "unknown", found[check]["reason"]
        assert field in found[check]["reason"]
    assert found["salesforce_queue_size"]["severity"] == "ok"


@pytest.mark.parametrize("odd", ["Infinity", "-Infinity", "NaN", "-5"])
def test_an_odd_counter_is_unknown_and_never_the_next_baseline(
    pytester: pytest.Pytester, body_server: BodyServer, odd: str
) -> None:
    body_server.body = queues_body(whmcs_failed=odd)
    found = run_queues(pytester, body_server.url)
    assert found["whmcs_failed_requests"]["severity"] == "unknown"
    assert "whmcs.metrics.failedRequests" in found["whmcs_failed_requests"]["reason"]
    assert "whmcs.failed_requests" not in stored_samples(pytester)

    # The next runs are healthy: a baseline first, then the true increase.
    body_server.body = queues_body(whmcs_failed="10")
    found = run_queues(pytester, body_server.url)
    assert found["whmcs_failed_requests"]["severity"] == "skipped"
    assert "first run" in found["whmcs_failed_requests"]["reason"]
    body_server.body = queues_body(whmcs_failed="12")
    found = run_queues(pytester, body_server.url)
    assert (
        found["whmcs_failed_requests"]["severity"],
        found["whmcs_failed_requests"]["value"],
    ) == (
        "ok",
        2,
    )


@pytest.mark.parametrize("odd", ["NaN", "+Inf", "-Inf", "-2"])
def test_an_odd_gauge_is_unknown_naming_the_series(
    pytester: pytest.Pytester, body_server: BodyServer, odd: str
) -> None:
    body_server.body = (
        f"# TYPE bff_http_active_connections gauge\nbff_http_active_connections {odd}\n"
    )
    config = pytester.path / "synthetic.toml"
    config.write_text(
        f'[environments.test]\nmetrics_url = "{body_server.url}/metrics"\nretries = 0\n'
        "[environments.test.params]\nconnection_capacity = 100\n"
    )
    results, _ = run_check_file(
        pytester, CHECKS / "check_application.py", config, "-k", "active_connections"
    )
    [check] = results.values()
    assert check["severity"] == "unknown"
    assert check["reason"].startswith("app.active_connections: "), check["reason"]
    assert "bff_http_active_connections is " in check["reason"]
