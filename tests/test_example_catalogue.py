"""A second catalogue, for another service (docs/examples/orders-api): the
framework runs a team's own checks and config without any Customer Portal key.

Its Orders API is a stdlib HTTP server on loopback answering GET /healthz and
GET /metrics with what each test sets; the catalogue runs as a user runs it,
``synthetic run --config docs/examples/orders-api/synthetic.toml``, from another
directory.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from synthetic.config import MOVED_TO_PARAMS
from tests.support.cli_runs import REPO, load_results, synthetic_cmd

EXAMPLE = REPO / "docs" / "examples" / "orders-api"


class OrdersApi:
    """The service: its health body and its queue gauge, as the test sets them."""

    def __init__(self) -> None:
        self.health: dict[str, Any] = {"status": "ok", "db": {"latencyMs": 12}}
        self.queue_depth = 3.0
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/healthz":
                    body, kind = json.dumps(api.health).encode(), "application/json"
                elif self.path == "/metrics":
                    text = (
                        f"# TYPE orders_queue_depth gauge\norders_queue_depth {api.queue_depth}\n"
                    )
                    body, kind = text.encode(), "text/plain; version=0.0.4"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OrdersApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def orders_api() -> Iterator[OrdersApi]:
    with OrdersApi() as api:
        yield api


def run_example(tmp_path: Path, api: OrdersApi) -> tuple[int, dict[str, dict[str, Any]]]:
    done = synthetic_cmd(
        "run", "--config", str(EXAMPLE / "synthetic.toml"), "--alerts", "off",
        "--results-dir", str(tmp_path / "out"),
        cwd=tmp_path, env={"ORDERS_API_URL": api.url},
    )  # fmt: skip
    document = load_results(tmp_path / "out")
    return done.returncode, {check["metric"]: check for check in document["checks"]}


def test_the_example_config_has_no_portal_key() -> None:
    config = tomllib.loads((EXAMPLE / "synthetic.toml").read_text(encoding="utf-8"))
    keys = {key for table in config["environments"].values() for key in table}
    keys |= set(config.get("params", {}))
    assert not keys & MOVED_TO_PARAMS
    for path in (EXAMPLE / "orders_checks").glob("*.py"):
        imported = [
            line.split()[1]
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.startswith(("from ", "import "))
        ]
        # Its own package, the framework's public one and libraries: not the portal's.
        assert not [m for m in imported if m == "checks" or m.startswith("checks.")], path
        assert not [m for m in imported if m.startswith("synthetic.")], path


@pytest.mark.slow
def test_a_healthy_orders_api_is_ok(tmp_path: Path, orders_api: OrdersApi) -> None:
    code, checks = run_example(tmp_path, orders_api)
    assert code == 0
    assert {metric: c["severity"] for metric, c in checks.items()} == {
        "orders.health": "ok",
        "orders.db_latency": "ok",
        "orders.queue_depth": "ok",
    }
    assert checks["orders.db_latency"]["value"] == 12
    assert checks["orders.queue_depth"]["value"] == 3.0


@pytest.mark.slow
def test_its_thresholds_and_its_own_settings_apply(tmp_path: Path, orders_api: OrdersApi) -> None:
    orders_api.health = {"status": "ok", "db": {"latencyMs": 180}}  # warning > 100ms
    orders_api.queue_depth = 5000  # critical > 1000
    code, checks = run_example(tmp_path, orders_api)
    assert code == 2  # Nagios CRITICAL
    assert checks["orders.db_latency"]["severity"] == "warning"
    assert checks["orders.queue_depth"]["severity"] == "critical"
    assert checks["orders.queue_depth"]["reason"] == (
        "orders.queue_depth = 5000 orders (critical > 1000)"
    )


@pytest.mark.slow
def test_a_down_service_is_critical_and_never_green(tmp_path: Path, orders_api: OrdersApi) -> None:
    orders_api.health = {"status": "down"}  # no db: the latency cannot be read
    code, checks = run_example(tmp_path, orders_api)
    assert code == 2  # Nagios CRITICAL, the worst; the latency is UNKNOWN, never OK
    assert checks["orders.health"]["severity"] == "critical"
    assert checks["orders.db_latency"]["severity"] == "unknown"
    assert "has no 'db'" in checks["orders.db_latency"]["reason"]


@pytest.mark.slow
def test_its_generated_monitoring_names_nothing_of_the_portal(tmp_path: Path) -> None:
    # Without a [generate] table the artifacts are named after its checks: no
    # guide's alarm, monitor, dashboard, stream or job of the Customer Portal's.
    out = tmp_path / "monitoring"
    done = synthetic_cmd(
        "generate", "prometheus-rules", "prometheus-scrape", "alertmanager", "datadog",
        "grafana", "cloudwatch", "--config", str(EXAMPLE / "synthetic.toml"),
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert [f for f in files if f.startswith("grafana/")] == ["grafana/checks.json"]
    text = "\n".join([done.stdout, done.stderr, *((out / f).read_text() for f in files)])
    for portal in ("portal", "whmcs", "salesforce", "freebit", "QueueBacklog", "Queue Depth",
                   "CustomerPortal", "guide's"):  # fmt: skip
        assert portal not in text, portal
    for metric in ("orders.health", "orders.db_latency", "orders.queue_depth"):
        assert metric in text
