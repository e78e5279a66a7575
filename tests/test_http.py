"""The BFF client: real sockets on loopback against the sandbox and small servers."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from synthetic.config import Environment
from synthetic.errors import MeasurementError
from synthetic.measure.http import BFFClient, HttpSession, Snapshot
from synthetic.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox("healthy", slow_delay_s=0.3) as running:
        yield running


def session_for(url: str, **overrides: float | int) -> HttpSession:
    settings: dict[str, float | int] = {"timeout_s": 2.0, "retries": 2, "retry_budget_s": 3.0}
    settings.update(overrides)
    environment = Environment(name="test", base_url=url, **settings)  # type: ignore[arg-type]
    return HttpSession(environment, run_id="20261124T000000Z-abc123")


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 for the first `failures` requests, then 200 JSON."""

    failures = 0
    seen: list[str] = []  # noqa: RUF012 - reset per server below

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        status = 503 if len(type(self).seen) <= type(self).failures else 200
        body = json.dumps({"status": "ok" if status == 200 else "unavailable"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[_Flaky]]]:
    handler = type("Flaky", (_Flaky,), {"failures": 0, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_requests_carry_a_correlation_id_naming_run_and_check(sandbox: Sandbox) -> None:
    session = session_for(sandbox.url)
    client = BFFClient(session, check="check_whmcs_queue_size")
    assert client.get("/health").status_code == 200
    sent = sandbox.requests[-1].headers["X-Correlation-Id"]
    assert sent == "synthetic-20261124T000000Z-abc123-check_whmcs_queue_size"
    session.close()


def test_correlation_ids_are_header_safe(sandbox: Sandbox) -> None:
    session = session_for(sandbox.url)
    assert session.correlation_id("check_x[/health/queues ü]") == (
        "synthetic-20261124T000000Z-abc123-check_x[_health_queues_]"
    )
    session.close()


def test_snapshots_are_fetched_once_per_process(sandbox: Sandbox) -> None:
    session = session_for(sandbox.url)
    first = BFFClient(session, check="check_a").json("/health/queues")
    second = BFFClient(session, check="check_b").json("/health/queues")
    assert first == second
    fetched = [r for r in sandbox.requests if r.path == "/health/queues"]
    assert len(fetched) == 1
    assert fetched[0].headers["X-Correlation-Id"].endswith("-check_a")
    session.close()


def test_503_is_retried_then_answered(flaky: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky
    handler.failures = 2
    session = session_for(url, retries=2)
    response = BFFClient(session, check="c").get("/health")
    assert response.status_code == 200
    assert len(handler.seen) == 3
    session.close()


def test_status_retries_can_be_turned_off_for_timed_requests(
    flaky: tuple[str, type[_Flaky]],
) -> None:
    url, handler = flaky
    handler.failures = 1
    session = session_for(url, retries=2)
    response = BFFClient(session, check="c").get("/health", retry_statuses=False)
    assert response.status_code == 503
    assert len(handler.seen) == 1
    session.close()


def test_retries_stop_at_the_attempt_limit_and_return_the_last_answer(
    flaky: tuple[str, type[_Flaky]],
) -> None:
    url, handler = flaky
    handler.failures = 100
    session = session_for(url, retries=1)
    response = BFFClient(session, check="c").get("/health")
    assert response.status_code == 503
    assert len(handler.seen) == 2
    session.close()


def test_retries_are_bounded_in_time(flaky: tuple[str, type[_Flaky]]) -> None:
    url, handler = flaky
    handler.failures = 10_000
    session = session_for(url, retries=10, retry_budget_s=0.5)
    started = time.monotonic()
    assert BFFClient(session, check="c").get("/health").status_code == 503
    elapsed = time.monotonic() - started
    # budget + one backoff wait (max 2 s) + one request: well under 10 retries' worth.
    assert elapsed < 0.5 + 2.0 + 1.0
    assert 2 <= len(handler.seen) < 11
    session.close()


def test_connection_refused_raises_a_transport_error_after_retries(refused_port: int) -> None:
    session = session_for(f"http://127.0.0.1:{refused_port}", retries=1, retry_budget_s=1)
    with pytest.raises(httpx.ConnectError):
        BFFClient(session, check="c").get("/health")
    session.close()


def test_a_failed_snapshot_is_shared_not_refetched(sandbox: Sandbox) -> None:
    sandbox.set_scenario("down")
    session = session_for(sandbox.url, retries=0)
    for check in ("check_a", "check_b"):
        with pytest.raises(httpx.TransportError):
            BFFClient(session, check=check).snapshot("/health/queues")
    assert len([r for r in sandbox.requests if r.path == "/health/queues"]) == 1
    session.close()


def test_timeouts_bound_a_slow_target(sandbox: Sandbox) -> None:
    sandbox.set_scenario("slow")
    session = session_for(sandbox.url, timeout_s=0.1, retries=0)
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        BFFClient(session, check="c").get("/health")
    assert time.monotonic() - started < 1.0
    session.close()


def test_non_json_and_error_answers_are_measurement_errors(sandbox: Sandbox) -> None:
    sandbox.set_scenario("malformed")
    session = session_for(sandbox.url, retries=0)
    with pytest.raises(MeasurementError, match=r"GET /health returned a body that is not JSON"):
        BFFClient(session, check="c").json("/health")
    session.close()
    sandbox.set_scenario("errors")
    session = session_for(sandbox.url, retries=0)
    with pytest.raises(MeasurementError, match=r"^GET /health/queues returned HTTP 500$"):
        BFFClient(session, check="c").json("/health/queues")
    session.close()


# -- the bff fixture inside a pytest run --------------------------------------------------------


def test_bff_fixture_in_a_run(pytester: pytest.Pytester, sandbox: Sandbox) -> None:
    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\n")
    pytester.makefile(
        ".toml",
        synthetic=f"""
        [environments.sandbox]
        base_url = "{sandbox.url}"
        timeout_s = 2
        retries = 0
        """,
    )
    pytester.makepyfile(
        check_live="""
        import pytest

        @pytest.mark.metric("whmcs.queue_size", unit="requests")
        @pytest.mark.critical("> 50")
        def check_queue(bff):
            return bff.json("/health/queues")["whmcs"]["metrics"]["queueSize"]
        """
    )
    pytester.runpytest()
    document = json.loads((pytester.path / "synthetic-results/results.json").read_text())
    assert document["checks"][0]["severity"] == "ok"
    sent = [r for r in sandbox.requests if r.path == "/health/queues"]
    assert sent[-1].headers["X-Correlation-Id"] == f"synthetic-{document['run_id']}-check_queue"

    sandbox.set_scenario("whmcs-backlog")
    pytester.runpytest()
    document = json.loads((pytester.path / "synthetic-results/results.json").read_text())
    assert document["checks"][0]["reason"] == "whmcs.queue_size = 57 requests (critical > 50)"

    sandbox.set_scenario("down")
    pytester.runpytest()
    document = json.loads((pytester.path / "synthetic-results/results.json").read_text())
    assert document["checks"][0]["severity"] == "critical"
    assert "unreachable" in document["checks"][0]["reason"]


def test_bff_is_skipped_when_base_url_is_not_configured(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\n")
    pytester.makefile(".toml", synthetic="[environments.nobff]\ntimeout_s = 1\n")
    pytester.makepyfile(
        check_live="""
        import pytest

        @pytest.mark.critical("> 50")
        def check_queue(bff):
            return 1
        """
    )
    pytester.runpytest("--env", "nobff")
    document = json.loads((pytester.path / "synthetic-results/results.json").read_text())
    assert document["checks"][0]["severity"] == "skipped"
    assert document["checks"][0]["reason"] == "base_url is not configured for environment 'nobff'"


def test_a_large_snapshot_is_kept_compressed_and_given_back_whole() -> None:
    body = '{"status": "ok", "padding": "' + "x" * 5_000_000 + '"}'
    tracemalloc.start()
    try:
        kept = [Snapshot("/health", 200, body, "application/json", 1.0) for _ in range(5)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 1_000_000  # five 5 MB bodies, kept in well under a megabyte
    assert kept[0].text == body
    assert kept[0].json()["status"] == "ok"
    assert Snapshot("/x", 200, "small", "", 1.0).text == "small"
    with pytest.raises(AttributeError, match="read-only"):
        kept[0].status_code = 500
