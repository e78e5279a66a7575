"""Allure results of checks: severity, labels, runbook link, parameters, evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

INI = """
[pytest]
python_files = check_*.py test_*.py
python_functions = check_* test_*
"""

TOKEN = "tok-5f6e7d8c9b"

CONFIG = """
[environments.staging]
base_url = "http://127.0.0.1:9/"
headers = { Authorization = "Bearer ${PORTAL_TOKEN}" }

[runbooks]
links = { queue-management = "https://runbooks.example/queues" }
"""

CHECKS = """
import pytest
from synthetic import Measurement

@pytest.mark.metric("whmcs.queue_size", unit="requests", component="queues",
                    runbook="queue-management", priority="P2")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_queue(synthetic_env):
    seen = synthetic_env.headers["Authorization"]
    return Measurement(57, evidence={"queue": "email", "seen": seen})

@pytest.mark.metric("app.latency", unit="ms", priority="P4")
@pytest.mark.warning("> 2s")
@pytest.mark.critical("> 5s")
def check_latency():
    return 2500

@pytest.mark.metric("disk", unit="%", priority="P1")
@pytest.mark.critical("> 90%")
def check_disk():
    return 12.5
"""


@pytest.fixture
def checks(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PORTAL_TOKEN", TOKEN)
    pytester.makeini(INI)
    pytester.makefile(".toml", synthetic=CONFIG)
    pytester.makepyfile(check_all=CHECKS)
    return pytester


def allure_results(directory: Path) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in directory.glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        found[result["name"]] = result
    return found


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


def parameters(result: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in result.get("parameters", [])}


def run(checks: pytest.Pytester, *args: str) -> dict[str, dict[str, Any]]:
    result = checks.runpytest("--env", "staging", "--alluredir=allure", *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # check_queue is critical
    found = allure_results(checks.path / "allure")
    assert set(found) == {"check_queue", "check_latency", "check_disk"}
    return found


def test_labels_severity_and_runbook(checks: pytest.Pytester) -> None:
    found = run(checks)
    queue, latency, disk = found["check_queue"], found["check_latency"], found["check_disk"]
    assert queue["status"] == "failed"
    assert labels(queue, "severity") == ["critical"]
    assert labels(latency, "severity") == ["minor"]
    assert labels(disk, "severity") == ["blocker"]
    assert labels(queue, "environment") == ["staging"]
    assert labels(queue, "component") == ["queues"]
    assert labels(disk, "component") == []
    assert labels(queue, "metric") == ["whmcs.queue_size"]
    assert labels(queue, "synthetic_severity") == ["critical"]
    assert labels(latency, "synthetic_severity") == ["warning"]
    assert labels(disk, "synthetic_severity") == ["ok"]
    assert "warning" in labels(latency, "tag")
    assert "warning" not in labels(disk, "tag")
    assert {"type": "link", "url": "https://runbooks.example/queues", "name": "runbook"} in (
        queue["links"]
    )
    assert not any(link.get("name") == "runbook" for link in disk.get("links", []))


def test_parameters_are_value_unit_and_thresholds(checks: pytest.Pytester) -> None:
    found = run(checks)
    assert parameters(found["check_queue"]) == {
        "value": "57",
        "unit": "'requests'",
        "warning": "'> 10'",
        "critical": "'> 50'",
    }
    assert parameters(found["check_disk"]) == {
        "value": "12.5",
        "unit": "'%'",
        "critical": "'> 90%'",
    }
    # A value that changes each run must not change the test's history id.
    assert all(p.get("excluded") for p in found["check_queue"]["parameters"])


def test_evidence_is_attached_as_masked_json(checks: pytest.Pytester) -> None:
    found = run(checks)
    attachments = found["check_queue"]["attachments"]
    evidence = [a for a in attachments if a["name"] == "evidence"]
    assert len(evidence) == 1
    assert evidence[0]["type"] == "application/json"
    text = (checks.path / "allure" / evidence[0]["source"]).read_text(encoding="utf-8")
    assert TOKEN not in text
    assert json.loads(text) == {"queue": "email", "seen": "***"}
    assert not [a for a in found["check_disk"].get("attachments", []) if a["name"] == "evidence"]
    for path in (checks.path / "allure").iterdir():
        assert TOKEN not in path.read_text(encoding="utf-8", errors="replace")


def test_under_xdist_workers(checks: pytest.Pytester) -> None:
    found = run(checks, "-n", "2")
    assert labels(found["check_queue"], "severity") == ["critical"]
    assert parameters(found["check_queue"])["value"] == "57"
    assert any(a["name"] == "evidence" for a in found["check_queue"]["attachments"])


def test_without_alluredir_nothing_is_written(checks: pytest.Pytester) -> None:
    result = checks.runpytest("--env", "staging")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 failed, 1 passed, 1 warned*"])
    assert not (checks.path / "allure").exists()
    assert not list(checks.path.rglob("*-result.json"))
    assert not list(checks.path.rglob("*-attachment*"))
