"""Allure results of checks: severity, labels, runbook link, parameters, evidence,
statuses and messages from severity, and the run's files (environment, executor,
categories). The rendered HTML reports are tested in test_allure_html.py."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from synthetic.outputs.allure_report import CATEGORIES, executor_info

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


@pytest.mark.slow
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


MIXED = """
import pytest
from synthetic import MeasurementError, Unreachable

@pytest.fixture
def snapshot():
    raise Unreachable("redis at 127.0.0.1:9: connection refused", target="redis")

@pytest.mark.metric("health.status", component="bff", priority="P1")
@pytest.mark.critical("!= 'ok'")
def check_health(bff):
    return bff.json("/health")["status"]

@pytest.mark.metric("redis.memory", unit="%")
@pytest.mark.critical("> 90%")
def check_memory(snapshot):
    return snapshot

@pytest.mark.metric("cache.hit_rate", unit="%")
@pytest.mark.critical("< 50%")
def check_cache():
    raise MeasurementError("INFO has no keyspace_hits")

@pytest.mark.metric("integration.health", unreachable="unknown")
@pytest.mark.critical("!= 'ok'")
def check_integration(bff):
    return bff.json("/auth/health-check")["status"]

@pytest.mark.metric("queue.optional")
@pytest.mark.critical("> 1")
def check_skipped():
    pytest.skip("not configured")
"""


def status_line(result: dict[str, Any]) -> tuple[str, str]:
    return result["status"], (result.get("statusDetails") or {}).get("message", "")


@pytest.mark.slow
def test_status_and_message_follow_the_severity(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_mixed=MIXED)
    checks.runpytest("--env", "staging", "--alluredir=allure")
    found = allure_results(checks.path / "allure")
    # A breach is failed; so is an unreachable target, raised in the check or
    # in a fixture (allure-pytest alone calls both broken).
    assert status_line(found["check_queue"]) == (
        "failed",
        "CRITICAL: whmcs.queue_size = 57 requests (critical > 50)",
    )
    status, message = status_line(found["check_health"])
    assert status == "failed"
    assert message.startswith("CRITICAL: health.status: unreachable: ConnectError")
    assert status_line(found["check_memory"]) == (
        "failed",
        "CRITICAL: redis.memory: unreachable: redis at 127.0.0.1:9: connection refused",
    )
    # Could not measure: broken, unreachable="unknown" included.
    assert status_line(found["check_cache"]) == (
        "broken",
        "UNKNOWN: cache.hit_rate: INFO has no keyspace_hits",
    )
    assert status_line(found["check_integration"])[0] == "broken"
    assert "unreachable: ConnectError" in status_line(found["check_integration"])[1]
    # A warning passes, visibly: a message, a label and a tag.
    assert status_line(found["check_latency"]) == (
        "passed",
        "WARNING: app.latency = 2500 ms (warning > 2s)",
    )
    assert status_line(found["check_disk"]) == ("passed", "")
    assert found["check_skipped"]["status"] == "skipped"
    # Checks that raise carry the same labels as checks that measured.
    for name in ("check_health", "check_memory", "check_cache"):
        assert labels(found[name], "environment") == ["staging"], name
        assert labels(found[name], "metric"), name
    assert labels(found["check_memory"], "synthetic_severity") == ["critical"]
    assert "unreachable" in labels(found["check_memory"], "tag")
    assert labels(found["check_health"], "severity") == ["blocker"]


@pytest.mark.slow
def test_status_under_xdist(checks: pytest.Pytester) -> None:
    checks.makepyfile(check_mixed=MIXED)
    checks.runpytest("--env", "staging", "--alluredir=allure", "-n", "2")
    found = allure_results(checks.path / "allure")
    assert found["check_memory"]["status"] == "failed"
    assert found["check_cache"]["status"] == "broken"
    assert status_line(found["check_latency"])[1].startswith("WARNING: ")


GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/portal",
    "GITHUB_RUN_ID": "4242",
    "GITHUB_RUN_NUMBER": "17",
    "GITHUB_WORKFLOW": "synthetic (scheduled)",
}
CI_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL")


def read_properties(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines)


def test_run_files_in_a_github_actions_job(
    checks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in GITHUB_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SYNTHETIC_TARGET_VERSION", "v2.4.1")
    run(checks)
    folder = checks.path / "allure"
    properties = read_properties(folder / "environment.properties")
    assert properties["environment"] == "staging"
    assert properties["target"] == "http://127.0.0.1:9/"
    assert properties["version"] == "v2.4.1"
    assert properties["synthetic.run_id"]
    assert json.loads((folder / "executor.json").read_text(encoding="utf-8")) == {
        "name": "GitHub Actions",
        "type": "github",
        "url": "https://github.com/acme/portal",
        "buildOrder": 17,
        "buildName": "synthetic (scheduled) 17",
        "buildUrl": "https://github.com/acme/portal/actions/runs/4242",
    }
    assert json.loads((folder / "categories.json").read_text(encoding="utf-8")) == list(CATEGORIES)
    allurerc = json.loads((folder / "allurerc.json").read_text(encoding="utf-8"))
    assert [rule["name"] for rule in allurerc["categories"]["rules"]] == [
        "Unreachable targets",
        "Critical breaches",
        "Warnings",
        "Broken checks",
    ]


def test_no_executor_outside_ci_and_the_target_version_option(
    checks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    run(checks, "--target-version", "abc123")
    folder = checks.path / "allure"
    assert not (folder / "executor.json").exists()
    assert read_properties(folder / "environment.properties")["version"] == "abc123"


def test_a_secret_in_the_target_is_masked_in_the_run_files(
    checks: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_HOST", TOKEN)
    checks.makefile(
        ".toml",
        synthetic=CONFIG.replace("127.0.0.1:9/", "127.0.0.1:9/tenant/${PORTAL_HOST}/"),
    )
    checks.runpytest("--env", "staging", "--alluredir=allure", "--alerts=off")
    text = (checks.path / "allure" / "environment.properties").read_text(encoding="utf-8")
    assert "target=http://127.0.0.1:9/tenant/***/" in text.splitlines()
    assert TOKEN not in text


def test_executor_from_gitlab_and_jenkins() -> None:
    gitlab = executor_info(
        {
            "GITLAB_CI": "true",
            "CI_PROJECT_URL": "https://gitlab.example/acme/portal",
            "CI_PIPELINE_IID": "88",
            "CI_JOB_NAME": "synthetic",
            "CI_JOB_URL": "https://gitlab.example/acme/portal/-/jobs/9",
        }
    )
    assert gitlab == {
        "name": "GitLab CI",
        "type": "gitlab",
        "url": "https://gitlab.example/acme/portal",
        "buildOrder": 88,
        "buildName": "synthetic",
        "buildUrl": "https://gitlab.example/acme/portal/-/jobs/9",
    }
    jenkins = executor_info({"JENKINS_URL": "https://ci.example/", "BUILD_NUMBER": "x"})
    assert jenkins == {"name": "Jenkins", "type": "jenkins", "url": "https://ci.example/"}
    assert executor_info({"CI": "true"}) is None


MESSAGES = {
    "CRITICAL: whmcs.queue_size = 57 requests (critical > 50)": ("failed", "Critical breaches"),
    "CRITICAL: health.status: unreachable: ConnectError: refused": (
        "failed",
        "Unreachable targets",
    ),
    "UNKNOWN: integration.health: unreachable: timed out": ("broken", "Unreachable targets"),
    "UNKNOWN: cache.hit_rate: INFO has no keyspace_hits\nsecond line": (
        "broken",
        "Broken checks",
    ),
    "ValueError: a fixture broke": ("broken", "Broken checks"),
    "WARNING: app.latency = 2500 ms (warning > 2s)": ("passed", "Warnings"),
}


@pytest.mark.parametrize(("message", "expected"), MESSAGES.items())
def test_each_message_falls_in_exactly_one_category(
    message: str, expected: tuple[str, str]
) -> None:
    # Java's `matches` semantics (Allure 2): the whole message must match.
    status, category = expected
    matched = [
        rule["name"]
        for rule in CATEGORIES
        if status in rule["matchedStatuses"] and re.fullmatch(rule["messageRegex"], message)
    ]
    assert matched == [category]
