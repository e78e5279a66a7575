"""A runner's location travels with its results: results.json, the history and every export."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from synthetic.alerts.probe import probe
from synthetic.exporters import cloudwatch, dogstatsd, prometheus
from synthetic.history import open_history, rows_of
from synthetic.redact import Masker
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.sandbox.server import Sandbox

QUEUE = CheckResult(
    id="checks/check_q.py::check_queue",
    metric="whmcs.queue_size",
    severity=Severity.WARNING,
    reason="whmcs.queue_size = 12",
    value=12,
    unit="requests",
    labels={"queue": "email"},
)


def run_from(location: str | None) -> RunResult:
    return RunResult(
        run_id="20261205T050000Z-abcdef",
        environment="production",
        target=None,
        started_at="2026-12-05T05:00:00.000Z",
        finished_at="2026-12-05T05:00:02.000Z",
        checks=(QUEUE,),
        location=location,
    )


def test_the_run_document_names_its_location_and_reads_back() -> None:
    document = run_from("ci-eu").to_json()
    assert document["location"] == "ci-eu"
    assert RunResult.from_json(json.loads(json.dumps(document))).location == "ci-eu"
    assert run_from(None).to_json()["location"] is None


def test_prometheus_series_and_the_gateway_group_carry_the_location() -> None:
    text = generate_latest(prometheus.registry(run_from("office"))).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert samples
    assert all(s.labels.get("location") == "office" for s in samples), text
    plain = generate_latest(prometheus.registry(run_from(None))).decode()
    assert "location=" not in plain


def test_cloudwatch_and_dogstatsd_carry_the_location() -> None:
    data = cloudwatch.metric_data(run_from("ci-us"))
    for datum in data:
        assert {"Name": "Location", "Value": "ci-us"} in datum["Dimensions"]
    now = cloudwatch._finished(run_from("ci-us"))
    cloudwatch.validate({"Namespace": "CustomerPortal", "MetricData": data}, now=now)
    for _, _, tags in dogstatsd.gauges(run_from("ci-us")):
        assert "location:ci-us" in tags
    for _, _, tags in dogstatsd.gauges(run_from(None)):
        assert not any(t.startswith("location:") for t in tags)


def test_the_history_fills_its_location_column(tmp_path: Path) -> None:
    store = open_history(None, results_dir=tmp_path)
    try:
        store.append(*rows_of(run_from("ci-eu")))
        store.append(*rows_of(dataclasses.replace(run_from("ci-us"), run_id="other")))
        rows = store.read(since=0, check=QUEUE.id, environment="production", location="ci-eu")
        assert [r.location for r in rows] == ["ci-eu"]
        assert {r.location for r in store.read(since=0, check=QUEUE.id)} == {"ci-eu", "ci-us"}
        assert {r.location for r in store.runs(since=0)} == {"ci-eu", "ci-us"}
    finally:
        store.close()


INI = """
[pytest]
python_files = check_*.py
python_functions = check_*
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makefile(".toml", synthetic="")
    pytester.makepyfile(
        check_q='import pytest\n\n@pytest.mark.critical("> 5")\ndef check_one():\n    return 1\n'
    )
    return pytester


def _location(pytester: pytest.Pytester) -> object:
    document = json.loads((pytester.path / "synthetic-results" / "results.json").read_text())
    return document["location"]


def test_location_from_the_command_line_wins_over_the_environment(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTHETIC_LOCATION", "office")
    project.runpytest("-p", "no:randomly", "--alerts=off").assert_outcomes(passed=1)
    assert _location(project) == "office"
    project.runpytest("-p", "no:randomly", "--alerts=off", "--location=ci-eu")
    assert _location(project) == "ci-eu"


def test_a_bad_location_name_is_one_line_naming_the_option(project: pytest.Pytester) -> None:
    result = project.runpytest("--location=ci eu/1")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--location / SYNTHETIC_LOCATION: 'ci eu/1' is not a location*"])


@pytest.mark.slow
def test_the_probe_is_healthy_when_anything_answers_and_says_what_failed() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        refused = f"http://user:s3cret@127.0.0.1:{sock.getsockname()[1]}/"
    masker = Masker(["s3cret"])
    with Sandbox("healthy") as answering:
        # Any HTTP answer proves the route, a 404 too.
        healthy = probe([refused, answering.url + "/nothing-here"], masker=masker)
    assert healthy.healthy
    assert "answered HTTP 404" in healthy.detail
    cut = probe([refused], masker=masker, timeout_s=2)
    assert not cut.healthy
    assert cut.detail.startswith(refused.replace("s3cret", "***")[:20])
    assert "s3cret" not in cut.detail
    assert probe([], masker=masker).healthy
