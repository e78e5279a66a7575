"""The `synthetic` command, run as a user runs it: a real process, real exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli_runs import REPO, SYNTHETIC, load_results, synthetic_cmd


@pytest.mark.parametrize(
    ("queue", "broken", "code"),
    [("1", "", 0), ("11", "", 1), ("51", "", 2), ("1", "1", 3), ("51", "1", 2)],
)
@pytest.mark.slow
def test_run_exits_with_the_nagios_code_of_the_worst(
    project: Path, queue: str, broken: str, code: int
) -> None:
    done = synthetic_cmd("run", cwd=project, env={"QUEUE": queue, "BROKEN": broken})
    assert done.returncode == code, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("queue", "fail_on", "code"),
    [("11", "critical", 0), ("51", "critical", 1), ("11", "warning", 1), ("51", "never", 0)],
)
@pytest.mark.slow
def test_gate_exits_0_or_1_by_fail_on(project: Path, queue: str, fail_on: str, code: int) -> None:
    done = synthetic_cmd("gate", "--fail-on", fail_on, cwd=project, env={"QUEUE": queue})
    assert done.returncode == code, done.stdout + done.stderr
    verdict = "FAILED" if code else "PASSED"
    assert f"synthetic gate: {verdict}" in done.stdout


@pytest.mark.slow
def test_pytest_arguments_pass_through(project: Path) -> None:
    done = synthetic_cmd(
        "run", "-k", "queue", "--results-dir", "out", cwd=project, env={"QUEUE": "60"}
    )
    assert done.returncode == 2
    assert [c["metric"] for c in load_results(project / "out")["checks"]] == ["queue"]


@pytest.mark.slow
def test_run_with_xdist(project: Path) -> None:
    done = synthetic_cmd("run", "-n", "2", cwd=project, env={"QUEUE": "12"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(load_results(project / "synthetic-results")["checks"]) == 2


@pytest.mark.slow
def test_config_errors_exit_unknown_with_one_line(project: Path) -> None:
    done = synthetic_cmd("run", "--env", "nowhere", cwd=project)
    assert done.returncode == 3
    assert "environment 'nowhere' is not defined" in done.stderr
    gate = synthetic_cmd("gate", "--env", "nowhere", cwd=project)
    assert gate.returncode == 1


def test_a_missing_checks_directory_is_explained(tmp_path: Path) -> None:
    done = synthetic_cmd("run", cwd=tmp_path)
    assert done.returncode == 3
    assert "checks: no check directory found" in done.stderr


@pytest.mark.slow
def test_a_bad_threshold_makes_run_unknown_and_gate_fail(project: Path) -> None:
    bad = project / "checks" / "check_bad.py"
    bad.write_text(
        'import pytest\n@pytest.mark.critical("over 9000")\ndef check_bad():\n    return 1\n'
    )
    done = synthetic_cmd("run", cwd=project, env={"QUEUE": "1"})
    assert done.returncode == 3
    assert "check_bad.py::check_bad: @pytest.mark.critical:" in done.stdout
    assert synthetic_cmd("gate", cwd=project, env={"QUEUE": "1"}).returncode == 1


@pytest.mark.slow
def test_list_json_is_the_portal_catalogue() -> None:
    done = synthetic_cmd("list", "--json", cwd=REPO)
    assert done.returncode == 0, done.stderr
    catalogue = json.loads(done.stdout)
    metrics = {entry["metric"] for entry in catalogue}
    assert {
        "health.status",
        "health.check",
        "endpoint.status",
        "integration.health",
        "whmcs.queue_size",
        "whmcs.failed_requests",
        "whmcs.health",
        "salesforce.health",
        "salesforce.queue_size",
        "salesforce.failed_requests",
        "salesforce.daily_api_usage",
        "catalog.cache",
    } <= metrics
    for entry in catalogue:
        assert set(entry) >= {
            "id",
            "metric",
            "unit",
            "component",
            "warning",
            "critical",
            "runbook",
            "priority",
        }
        assert entry["runbook"].startswith("https://")
        assert entry["priority"] in {"P1", "P2", "P3", "P4"}
    queue = next(e for e in catalogue if e["metric"] == "whmcs.queue_size")
    assert (queue["warning"], queue["critical"], queue["unit"]) == ("> 10", "> 50", "requests")
    assert len([e for e in catalogue if e["metric"] == "endpoint.status"]) == 6


@pytest.mark.slow
def test_list_plain(project: Path) -> None:
    done = synthetic_cmd("list", cwd=project)
    assert done.returncode == 0
    assert "P3  queue" in done.stdout
    assert "2 checks" in done.stdout


@pytest.mark.parametrize("command", ["run", "gate", "list", "sandbox", "demo"])
@pytest.mark.slow
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    done = synthetic_cmd(command, "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert f"usage: synthetic {command}" in done.stdout


# -- the demo against every scenario -----------------------------------------------------------

EXPECTED = {
    # scenario: (exit code, {metric key: severity}); the log metrics read the
    # sandbox portal's Pino log, which the demo extends with the scenario's traffic.
    "healthy": (
        0,
        {
            "health.status": "ok",
            "whmcs.queue_size": "ok",
            "app.error_rate": "ok",
            "logs.error_count": "ok",
            "external.error_rate": "ok",
        },
    ),
    # /health is degraded because its cache check fails: the guide makes a
    # failing health check critical, so the run is critical too.
    "degraded": (
        2,
        {
            'health.check{name="cache"}': "critical",
            "catalog.cache": "ok",
            "salesforce.health": "warning",
            "health.status": "warning",
            "whmcs.queue_size": "warning",
            "whmcs.health": "warning",
            'integration.health{integration="salesforce"}': "warning",
            "app.error_rate": "warning",
        },
    ),
    "whmcs-backlog": (
        2,
        {
            "whmcs.queue_size": "critical",
            "whmcs.health": "critical",
            'external.error_rate{dependency="whmcs"}': "critical",
            'external.response_time_p95{dependency="whmcs"}': "critical",
            'external.error_rate{dependency="salesforce"}': "ok",
        },
    ),
    "salesforce-quota": (
        2,
        {
            "salesforce.daily_api_usage": "critical",
            'external.error_rate{dependency="salesforce"}': "warning",
        },
    ),
    "errors": (
        2,
        {'endpoint.status{path="/health/queues"}': "critical", "app.error_rate": "critical"},
    ),
    "down": (2, {"health.status": "critical", "whmcs.queue_size": "critical"}),
    "malformed": (2, {"health.status": "unknown", 'endpoint.status{path="/health"}': "critical"}),
}


def _key(check: dict[str, Any]) -> str:
    labels = check["labels"]
    if not labels:
        return str(check["metric"])
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{check['metric']}{{{inner}}}"


@pytest.mark.slow
@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_demo_scenarios(scenario: str, tmp_path: Path) -> None:
    code, expected = EXPECTED[scenario]
    done = synthetic_cmd("demo", "--scenario", scenario, "--results-dir", str(tmp_path), cwd=REPO)
    assert done.returncode == code, done.stdout[-3000:] + done.stderr
    assert f"synthetic demo: sandbox '{scenario}' at http://127.0.0.1:" in done.stdout
    assert "synthetic summary" in done.stdout
    severities = {_key(c): c["severity"] for c in load_results(tmp_path)["checks"]}
    for key, severity in expected.items():
        assert severities[key] == severity, (key, severities)
    if scenario == "down":
        assert all(
            "unreachable" in c["reason"]
            for c in load_results(tmp_path)["checks"]
            if c["severity"] == "critical"
        )


def test_demo_refuses_an_unknown_scenario(tmp_path: Path) -> None:
    done = synthetic_cmd("demo", "--scenario", "on-fire", cwd=REPO)
    assert done.returncode == 2
    assert "on-fire" in done.stderr


# -- the sandbox command -----------------------------------------------------------------------


@pytest.mark.slow
def test_sandbox_serves_until_sigterm(tmp_path: Path) -> None:
    # --port 0: the sandbox picks a free port and says which; no race for one.
    process = subprocess.Popen(
        [*SYNTHETIC, "sandbox", "--scenario", "degraded", "--port", "0"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline()  # flushed at start; the test's timeout bounds it
        url = first_line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        body = httpx.get(f"{url}/health", timeout=5).json()
        assert body["status"] == "degraded"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0
        assert stderr == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=5)


def test_sandbox_refuses_a_public_address(tmp_path: Path) -> None:
    done = synthetic_cmd("sandbox", "--host", "0.0.0.0", "--port", "0", cwd=tmp_path, timeout=20)
    assert done.returncode == 2
    assert "0.0.0.0" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# -- runs that cannot vouch for the portal ------------------------------------------------------


@pytest.mark.slow
def test_an_interrupted_run_is_unknown_and_says_so(project: Path) -> None:
    (project / "checks" / "check_stop.py").write_text(
        "import pytest\n@pytest.mark.critical('> 5')\ndef check_stop():\n"
        "    raise KeyboardInterrupt\n"
    )
    done = synthetic_cmd("run", cwd=project, env={"QUEUE": "1"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "incomplete run" in done.stderr
    assert load_results(project / "synthetic-results")["complete"] is False
    assert synthetic_cmd("gate", cwd=project, env={"QUEUE": "1"}).returncode == 1


@pytest.mark.slow
def test_a_crashed_worker_makes_the_run_unknown(project: Path) -> None:
    (project / "checks" / "check_crash.py").write_text(
        "import os, pytest\n@pytest.mark.critical('> 5')\ndef check_crash():\n    os._exit(1)\n"
    )
    done = synthetic_cmd("run", "-n", "2", cwd=project, env={"QUEUE": "1"})
    assert done.returncode == 3, done.stdout + done.stderr
    document = load_results(project / "synthetic-results")
    assert document["complete"] is False
    assert any("check_crash" in error for error in document["errors"])


@pytest.mark.slow
def test_a_stale_result_does_not_survive_a_failed_run(project: Path) -> None:
    assert synthetic_cmd("run", cwd=project, env={"QUEUE": "1"}).returncode == 0
    results_file = project / "synthetic-results" / "results.json"
    assert results_file.exists()
    (project / "synthetic.toml").write_text("[environments.sandbox]\ntimeout_s = 'slow'\n")
    assert synthetic_cmd("run", cwd=project, env={"QUEUE": "1"}).returncode == 3
    assert not results_file.exists()


@pytest.mark.slow
def test_a_run_that_measured_nothing_is_unknown(project: Path) -> None:
    (project / "checks" / "check_project.py").write_text(
        "import pytest\n@pytest.mark.critical('> 5')\ndef check_needs_redis(redis_client):\n"
        "    return 1\n"
    )
    done = synthetic_cmd("run", cwd=project)
    assert done.returncode == 3
    assert load_results(project / "synthetic-results")["worst"] == "unknown"
    assert synthetic_cmd("gate", cwd=project).returncode == 0  # fail-on critical
    assert synthetic_cmd("gate", "--fail-on", "unknown", cwd=project).returncode == 1


@pytest.mark.slow
def test_option_values_are_not_mistaken_for_check_paths(project: Path) -> None:
    (project / "allure-results").mkdir()
    (project / "junit.xml").write_text("<testsuites/>")  # exists: still an option's value
    (project / "tests").mkdir()
    (project / "tests" / "test_other.py").write_text("def test_other():\n    assert False\n")
    done = synthetic_cmd(
        "run", "--alluredir", "allure-results", "--junitxml", "junit.xml", cwd=project,
        env={"QUEUE": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert {c["metric"] for c in load_results(project / "synthetic-results")["checks"]} == {
        "queue",
        "other",
    }
    # A path given on the command line replaces the config's checks.
    done = synthetic_cmd("run", "checks/check_project.py::check_queue", cwd=project,
                         env={"QUEUE": "1"})  # fmt: skip
    assert [c["metric"] for c in load_results(project / "synthetic-results")["checks"]] == ["queue"]


@pytest.mark.slow
def test_pytest_flags_are_not_abbreviations_of_ours(project: Path) -> None:
    done = synthetic_cmd("run", "--co", cwd=project)
    assert "expected one argument" not in done.stderr
    assert "<Function check_queue>" in done.stdout
    assert not (project / "synthetic-results" / "results.json").exists()


@pytest.mark.slow
def test_gate_reads_fail_on_from_the_environment(project: Path) -> None:
    done = synthetic_cmd("gate", cwd=project, env={"QUEUE": "11", "SYNTHETIC_FAIL_ON": "warning"})
    assert done.returncode == 1
    assert "fail-on: warning" in done.stdout


@pytest.mark.slow
def test_demo_always_checks_the_sandbox(tmp_path: Path) -> None:
    done = synthetic_cmd(
        "demo", "--env", "production", "-k", "health_status", "--results-dir", str(tmp_path),
        cwd=REPO,
    )  # fmt: skip
    assert load_results(tmp_path)["environment"] == "sandbox", done.stdout + done.stderr


@pytest.mark.slow
def test_an_override_for_an_unknown_metric_warns(project: Path) -> None:
    (project / "synthetic.toml").write_text(
        '[environments.sandbox]\nbase_url = "http://x"\n'
        '[environments.sandbox.thresholds."queue_sise"]\ncritical = "> 5"\n'
    )
    done = synthetic_cmd("run", cwd=project, env={"QUEUE": "1"})
    assert done.returncode == 0
    assert 'thresholds."queue_sise": no check measures this metric (a typo?)' in done.stdout


def test_conftests_import_without_test_only_packages() -> None:
    # `pip install -e .` (the README's demo command) brings no test extras, and
    # pytest may load tests/conftest.py in a demo run: it must still import.
    code = (
        "import sys\n"
        "for name in ('hypothesis', 'bullmq'):\n"
        "    sys.modules[name] = None  # makes `import name` fail like a missing package\n"
        "import tests.conftest, checks.conftest\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.stdout.strip() == "ok", done.stderr
