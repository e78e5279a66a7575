"""A run as a Nagios plugin line and as a GitHub job summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synthetic.outputs.formats import github_summary, junit_properties, nagios, perfdata
from synthetic.results import CheckResult, RunResult, Severity
from tests.support.cli_runs import synthetic_cmd


def result(
    metric: str,
    severity: Severity,
    value: object,
    *,
    unit: str | None = None,
    warning: str | None = None,
    critical: str | None = None,
    labels: dict[str, str] | None = None,
) -> CheckResult:
    return CheckResult(
        id=f"checks/check_x.py::check_{metric}",
        metric=metric,
        severity=severity,
        reason=f"{metric} = {value} ({severity.value})",
        value=value,
        unit=unit,
        warning=warning,
        critical=critical,
        labels=labels or {},
    )


def run_of(*checks: CheckResult, errors: tuple[str, ...] = ()) -> RunResult:
    return RunResult("run-1", "production", None, "t0", "t1", checks, errors=errors)


# The Monitoring Plugins' performance data: 'label'=value[UOM];[warn];[crit];[min];[max]
PERF = re.compile(r"'[^']+'=-?[0-9.]+(s|ms|us|%|B|KB|MB)?;[^; ]*;[^; ]*;;")


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (result("q", Severity.OK, 57, unit="requests", warning="> 10", critical="> 50"),
         "'q'=57;~:10;~:50;;"),
        (result("p95", Severity.OK, 120.5, unit="ms", warning="> 2s", critical="> 5s"),
         "'p95'=120.5ms;~:2000;~:5000;;"),
        (result("hit", Severity.OK, 91.0, unit="%", warning="< 80%", critical="< 60%"),
         "'hit'=91%;80:;60:;;"),
        (result("r", Severity.OK, 5, warning="10:20", critical="@30:40"), "'r'=5;10:20;@30:40;;"),
        (result("s", Severity.OK, 3, critical="== 'x'"), "'s'=3;;;;"),
        # A label may not hold '=' (Monitoring Plugins guidelines): labels read queue:"email".
        (result("w", Severity.OK, 3, labels={"queue": "email"}), "'w{queue:\"email\"}'=3;;;;"),
    ],
)  # fmt: skip
def test_perfdata_gives_thresholds_as_nagios_ranges(check: CheckResult, expected: str) -> None:
    assert perfdata(check) == expected
    assert PERF.fullmatch(expected)


@pytest.mark.parametrize("value", ["degraded", None, True, float("nan")])
def test_no_perfdata_for_what_is_not_a_number(value: object) -> None:
    assert perfdata(result("x", Severity.OK, value)) is None


def test_the_status_line_names_the_worst_and_carries_perfdata() -> None:
    line = nagios(
        run_of(
            result("queue", Severity.CRITICAL, 57, critical="> 50"),
            result("status", Severity.WARNING, "degraded|bad"),
            result("disk", Severity.OK, 12.5, unit="%", critical="> 90%"),
        )
    )
    text, perf = line.split(" | ")
    assert text == (
        "SYNTHETIC CRITICAL - production: 1 critical, 1 warning, 1 ok: "
        "queue = 57 (critical); status = degraded/bad (warning)"
    )
    assert perf.split(" ") == ["'queue'=57;;~:50;;", "'disk'=12.5%;;~:90;;"]
    assert "\n" not in line


def test_an_incomplete_run_says_so_and_is_unknown() -> None:
    line = nagios(run_of(result("queue", Severity.OK, 1), errors=("worker crashed",)))
    assert line.startswith("SYNTHETIC UNKNOWN - production: 1 ok: incomplete run |")


def test_the_github_summary_is_a_table_worst_first() -> None:
    markdown = github_summary(
        run_of(
            result("ok_one", Severity.OK, 1),
            result("bad|one", Severity.CRITICAL, 57, critical="> 50"),
        )
    )
    lines = markdown.splitlines()
    assert lines[0] == "### 🔴 synthetic: CRITICAL (production)"
    rows = [line for line in lines if line.startswith("| ") and "check_" in line]
    assert rows[0].startswith("| 🔴 critical | `check_x.py::check_bad\\|one` | 57 |")
    assert rows[1].startswith("| 🟢 ok |")


@pytest.mark.slow
def test_synthetic_run_format_nagios_prints_one_line_and_exits_with_its_code(
    project: Path,
) -> None:
    done = synthetic_cmd("run", "--format", "nagios", cwd=project, env={"QUEUE": "57"})
    assert done.returncode == 2, done.stderr
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith("SYNTHETIC CRITICAL - sandbox: 1 critical, 1 ok: ")
    assert done.stdout.rstrip("\n").endswith("| 'queue'=57;~:10;~:50;; 'other'=1;;~:5;;")


@pytest.mark.slow
def test_a_run_in_github_actions_writes_the_job_summary(project: Path) -> None:
    summary = project / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    done = synthetic_cmd(
        "run", cwd=project, env={"QUEUE": "11", "GITHUB_STEP_SUMMARY": str(summary)}
    )
    assert done.returncode == 1, done.stdout + done.stderr
    written = summary.read_text(encoding="utf-8")
    assert written.startswith("earlier step\n### 🟡 synthetic: WARNING (sandbox)")
    assert "| 🟡 warning | `check_project.py::check_queue` | 11 requests | > 10 | > 50 |" in written


def test_junit_properties_carry_severity_value_and_thresholds() -> None:
    queue = result(
        "whmcs.queue_size", Severity.CRITICAL, 57, unit="requests", warning="> 10", critical="> 50"
    )
    assert junit_properties(queue) == [
        ("synthetic.severity", "critical"),
        ("synthetic.metric", "whmcs.queue_size"),
        ("synthetic.value", "57"),
        ("synthetic.unit", "requests"),
        ("synthetic.warning", "> 10"),
        ("synthetic.critical", "> 50"),
        ("synthetic.reason", "whmcs.queue_size = 57 (critical)"),
    ]
    labelled = result("integration.health", Severity.OK, "ok", labels={"integration": "whmcs"})
    assert dict(junit_properties(labelled))["synthetic.metric"] == (
        'integration.health{integration="whmcs"}'
    )
    assert dict(junit_properties(result("x", Severity.OK, True)))["synthetic.value"] == "true"
    assert dict(junit_properties(result("x", Severity.OK, {"b": 1})))["synthetic.value"] == (
        '{"b": 1}'
    )
    unknown = result("cache.hit_rate", Severity.UNKNOWN, None)
    assert "synthetic.value" not in dict(junit_properties(unknown))


JUNIT_CHECKS = """
import pytest
from synthetic import MeasurementError

@pytest.mark.metric("whmcs.queue_size", unit="requests")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_queue():
    return 57

@pytest.mark.metric("app.latency", unit="ms")
@pytest.mark.warning("> 2s")
@pytest.mark.critical("> 5s")
def check_latency():
    return 2500

@pytest.mark.metric("cache.hit_rate", unit="%")
@pytest.mark.critical("< 50%")
def check_cache():
    raise MeasurementError("INFO has no keyspace_hits")
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.slow
def test_junit_xml_carries_each_checks_severity_and_value(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    import xml.etree.ElementTree as ET

    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\n")
    pytester.makefile(
        ".toml", synthetic='[environments.sandbox]\nbase_url = "http://127.0.0.1:9/"\n'
    )
    pytester.makepyfile(check_all=JUNIT_CHECKS)
    pytester.runpytest("--junitxml=junit.xml", "--alerts=off", *workers)
    cases = {
        case.get("name"): case for case in ET.parse(pytester.path / "junit.xml").iter("testcase")
    }
    properties = {
        name: {p.get("name"): p.get("value") for p in case.iter("property")}
        for name, case in cases.items()
    }
    assert properties["check_queue"]["synthetic.severity"] == "critical"
    assert properties["check_queue"]["synthetic.value"] == "57"
    assert properties["check_queue"]["synthetic.critical"] == "> 50"
    assert properties["check_latency"]["synthetic.severity"] == "warning"
    assert properties["check_latency"]["synthetic.value"] == "2500"
    assert properties["check_cache"]["synthetic.severity"] == "unknown"
    assert "no keyspace_hits" in str(properties["check_cache"]["synthetic.reason"])
    # The JUnit status agrees: a breach fails, a warning passes.
    assert cases["check_queue"].find("failure") is not None
    assert cases["check_latency"].find("failure") is None
