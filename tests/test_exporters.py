"""Exporters in a run: configured per environment, each reports, none changes an outcome."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from synthetic.sandbox.processes import LOOPBACK
from tests.support.moto_server import cloudwatch_client, start_moto_or_fail

INI = """
[pytest]
python_files = check_*.py
python_functions = check_*
"""

CHECKS = """
import pytest

@pytest.mark.metric("whmcs.queue_size", unit="requests")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_queue():
    return 57
"""


@pytest.fixture
def udp() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(2)
    try:
        yield sock
    finally:
        sock.close()


def config(
    pytester: pytest.Pytester, udp_port: int, refused: int, cloudwatch_url: str | None
) -> None:
    cloudwatch = (
        f'cloudwatch_namespace = "CustomerPortal"\n'
        f'cloudwatch_region = "us-east-1"\n'
        f'cloudwatch_endpoint_url = "{cloudwatch_url}"\n'
        if cloudwatch_url
        else ""
    )
    pytester.makefile(
        ".toml",
        synthetic=f"""
# The names, for every environment; each exporter is turned on by the environment.
[exporters]
cloudwatch_names = {{ "whmcs.queue_size" = "WhmcsQueueDepth" }}
dogstatsd_names = {{ "whmcs.queue_size" = "portal.whmcs.queue_depth" }}

[environments.production]
base_url = "http://127.0.0.1:9"

[environments.production.exporters]
prometheus_textfile = "metrics/synthetic.prom"
pushgateway_url = "http://user:hunter2-secret@127.0.0.1:{refused}"
dogstatsd = "127.0.0.1:{udp_port}"
timeout_s = 1
{cloudwatch}""",
    )
    (pytester.path / "metrics").mkdir()
    pytester.makeini(INI)
    pytester.makepyfile(check_portal=CHECKS)


def test_each_configured_exporter_runs_and_a_failing_one_changes_no_outcome(
    pytester: pytest.Pytester,
    udp: socket.socket,
    refused_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with start_moto_or_fail() as moto:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        config(pytester, udp.getsockname()[1], refused_port, moto.url)
        result = pytester.runpytest("--env", "production", "--alerts", "off")
        result.assert_outcomes(failed=1)  # the critical check, and nothing else
        result.stdout.fnmatch_lines(
            [
                "*- synthetic exporters -*",
                f"prometheus textfile: wrote {pytester.path}/metrics/synthetic.prom",
                "pushgateway: failed: cannot push to Pushgateway http://user:***@127.0.0.1:*",
                "cloudwatch: * metrics to CustomerPortal",
                "dogstatsd: * gauges to 127.0.0.1:*",
            ]
        )
        assert "hunter2-secret" not in result.stdout.str()
        metrics = cloudwatch_client(moto.url).list_metrics(Namespace="CustomerPortal")["Metrics"]
    prom = (pytester.path / "metrics" / "synthetic.prom").read_text(encoding="utf-8")
    assert 'synthetic_check_value{check="check_portal.py::check_queue"' in prom
    assert "WhmcsQueueDepth" in {m["MetricName"] for m in metrics}
    datagram = udp.recv(4096).decode()
    assert datagram.rstrip("\n") == "portal.whmcs.queue_depth:57|g|#environment:production"
