"""What a check adds to its Allure result, and the files a results folder needs.

Per check, in the test process (allure-pytest acts on the test that is
running): severity from priority, labels, the runbook link, value and
thresholds as parameters, evidence as an attachment, all from the masked
`CheckResult`. `annotate` runs when the result is made, so checks that
raise (an unreachable target, a fixture that could not measure) get them too.

allure-pytest decides a status from the exception alone (AssertionError is
failed, anything else broken). `AllureStatuses`, called just before the file
writer, sets the status from the check's severity instead, and a message
the categories match on:

    CRITICAL -> failed   "CRITICAL: <reason>"  (an unreachable target too)
    UNKNOWN  -> broken   "UNKNOWN: <reason>"
    WARNING  -> passed   "WARNING: <reason>"   (a category, a label, a tag)
    OK       -> passed;  SKIPPED -> skipped

Per run, on the controller: ``environment.properties``, ``executor.json``
and ``categories.json`` (Allure 2, and Allure 3's reader), and
``allurerc.json`` carrying the same categories for Allure 3's
``allure generate --config``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import allure_commons
import pytest

from synthetic.files import write_json_atomic
from synthetic.redact import Masker
from synthetic.results import CheckResult, RunResult, Severity

SEVERITY_BY_PRIORITY = {"P1": "blocker", "P2": "critical", "P3": "normal", "P4": "minor"}

# The label that ties an Allure result to its check (its pytest node id).
CHECK_LABEL = "synthetic_check"

ALLURE_STATUS = {
    Severity.OK: "passed",
    Severity.WARNING: "passed",
    Severity.CRITICAL: "failed",
    Severity.UNKNOWN: "broken",
    Severity.SKIPPED: "skipped",
}

# First match wins in Allure 3, every match counts in Allure 2: the rules
# exclude each other so both show a check once. Written to suit both Java's
# `matches` (the whole message) and JavaScript's `test` (anchored with ^;
# no inline flags, hence [\s\S] for "any character").
_UNREACHABLE = r"(CRITICAL|UNKNOWN): [\s\S]*?unreachable: "
CATEGORIES: tuple[dict[str, Any], ...] = (
    {
        "name": "Unreachable targets",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": rf"^{_UNREACHABLE}[\s\S]*",
    },
    {
        "name": "Critical breaches",
        "matchedStatuses": ["failed"],
        "messageRegex": r"^CRITICAL: (?![\s\S]*?unreachable: )[\s\S]*",
    },
    {
        "name": "Warnings",
        "matchedStatuses": ["passed"],
        "messageRegex": r"^WARNING: [\s\S]*",
    },
    {
        "name": "Broken checks",
        "matchedStatuses": ["broken"],
        "messageRegex": rf"^(?!{_UNREACHABLE})[\s\S]*",
    },
)


def is_active(config: pytest.Config) -> bool:
    """Whether allure-pytest is writing results (``--alluredir`` given)."""
    return bool(config.getoption("allure_report_dir", None))


def annotate(item: pytest.Item, result: CheckResult, environment: str) -> None:
    """Add the check's Allure labels, link, parameters and evidence; a no-op without Allure."""
    if not is_active(item.config):
        return
    import allure

    dynamic: Any = allure.dynamic  # allure-commons leaves these untyped
    dynamic.severity(SEVERITY_BY_PRIORITY.get(result.priority or "", "normal"))
    dynamic.label(CHECK_LABEL, item.nodeid)
    dynamic.label("environment", environment)
    if result.component:
        dynamic.label("component", result.component)
    dynamic.label("metric", result.metric)
    dynamic.label("synthetic_severity", result.severity.value)
    if result.severity is Severity.WARNING:
        dynamic.tag("warning")
    if result.unreachable:
        dynamic.tag("unreachable")
    if result.runbook:
        dynamic.link(result.runbook, name="runbook")
    # Excluded from the history id: a value that changes each run must not
    # make Allure see a new test, or trends across scheduled runs break.
    parameters = {
        "value": result.value,
        "unit": result.unit,
        "warning": result.warning,
        "critical": result.critical,
    }
    for name, value in parameters.items():
        if value is not None:
            dynamic.parameter(name, value, excluded=True)
    if result.evidence is not None:
        allure.attach(
            json.dumps(result.evidence, ensure_ascii=False, indent=2),
            name="evidence",
            attachment_type=allure.attachment_type.JSON,
        )
    statuses = item.config.stash.get(STATUSES_KEY, None)
    if statuses is not None:
        statuses.expect(item.nodeid, result.severity, result.reason)


class AllureStatuses:
    """Sets each check's Allure status and message from its severity.

    An allure-commons plugin registered after allure-pytest's file writer,
    so it is called before it, once the test's result is complete.
    """

    def __init__(self) -> None:
        self._expected: dict[str, tuple[Severity, str]] = {}

    def expect(self, nodeid: str, severity: Severity, reason: str) -> None:
        self._expected[nodeid] = (severity, reason)

    @allure_commons.hookimpl
    def report_result(self, result: Any) -> None:
        nodeid = next((label.value for label in result.labels if label.name == CHECK_LABEL), None)
        if nodeid is None or nodeid not in self._expected:
            return
        severity, reason = self._expected.pop(nodeid)
        from allure_commons.model2 import StatusDetails

        result.status = ALLURE_STATUS[severity]
        if severity in (Severity.OK, Severity.SKIPPED):
            return
        trace = result.statusDetails.trace if result.statusDetails else None
        # A breach's reason is the whole story; a raised error keeps its trace.
        result.statusDetails = StatusDetails(
            message=f"{severity.name}: {reason}",
            trace=None if severity is Severity.WARNING else trace,
        )


STATUSES_KEY = pytest.StashKey[AllureStatuses]()


def register(config: pytest.Config) -> AllureStatuses:
    """Register `AllureStatuses` with allure-commons for this session."""
    plugin = AllureStatuses()
    allure_commons.plugin_manager.register(plugin)
    config.stash[STATUSES_KEY] = plugin
    return plugin


def unregister(config: pytest.Config) -> None:
    plugin = config.stash.get(STATUSES_KEY, None)
    if plugin is not None:
        allure_commons.plugin_manager.unregister(plugin)
        del config.stash[STATUSES_KEY]


def write_run_files(
    directory: Path,
    run: RunResult,
    *,
    version: str | None,
    masker: Masker,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the results folder's run files; the paths written."""
    environ = os.environ if environ is None else environ
    directory.mkdir(parents=True, exist_ok=True)
    properties = {
        "environment": run.environment,
        "target": run.target or "",
        "version": version or "",
        "synthetic.run_id": run.run_id,
        "synthetic.version": _synthetic_version(),
    }
    written = [directory / "environment.properties"]
    written[0].write_text(
        "".join(f"{key}={_property(masker.text(value))}\n" for key, value in properties.items()),
        encoding="utf-8",
    )
    executor = executor_info(environ)
    if executor is not None:
        write_json_atomic(directory / "executor.json", masker.data(executor), indent=2)
        written.append(directory / "executor.json")
    write_json_atomic(directory / "categories.json", list(CATEGORIES), indent=2)
    written.append(directory / "categories.json")
    allurerc = {
        "name": f"synthetic: {run.environment}",
        "categories": {
            "rules": [
                {
                    "name": rule["name"],
                    "matchers": {
                        "statuses": rule["matchedStatuses"],
                        "message": rule["messageRegex"],
                    },
                }
                for rule in CATEGORIES
            ]
        },
    }
    write_json_atomic(directory / "allurerc.json", allurerc, indent=2)
    written.append(directory / "allurerc.json")
    return written


def executor_info(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Allure's executor block from a CI's environment (GitHub Actions, GitLab CI, Jenkins)."""
    if environ.get("GITHUB_ACTIONS") == "true":
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        repository = environ.get("GITHUB_REPOSITORY", "")
        run_id = environ.get("GITHUB_RUN_ID", "")
        build_url = f"{server}/{repository}/actions/runs/{run_id}" if repository else None
        return _dropping_empty(
            {
                "name": "GitHub Actions",
                "type": "github",
                "url": f"{server}/{repository}" if repository else server,
                "buildOrder": _int(environ.get("GITHUB_RUN_NUMBER")),
                "buildName": " ".join(
                    part
                    for part in (environ.get("GITHUB_WORKFLOW"), environ.get("GITHUB_RUN_NUMBER"))
                    if part
                ),
                "buildUrl": build_url,
            }
        )
    if environ.get("GITLAB_CI") == "true":
        return _dropping_empty(
            {
                "name": "GitLab CI",
                "type": "gitlab",
                "url": environ.get("CI_PROJECT_URL"),
                "buildOrder": _int(environ.get("CI_PIPELINE_IID")),
                "buildName": environ.get("CI_JOB_NAME"),
                "buildUrl": environ.get("CI_JOB_URL"),
            }
        )
    if environ.get("JENKINS_URL"):
        return _dropping_empty(
            {
                "name": "Jenkins",
                "type": "jenkins",
                "url": environ.get("JENKINS_URL"),
                "buildOrder": _int(environ.get("BUILD_NUMBER")),
                "buildName": environ.get("BUILD_TAG"),
                "buildUrl": environ.get("BUILD_URL"),
            }
        )
    return None


def _dropping_empty(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value not in (None, "")}


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


_PROPERTY_SPECIAL = re.compile(r"[\\\n\r]")


def _property(value: str) -> str:
    """A value for a Java .properties line (backslash and line breaks escaped)."""
    return _PROPERTY_SPECIAL.sub(
        lambda m: {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}[m.group(0)], value
    )


def _synthetic_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-synthetic")
    except PackageNotFoundError:
        return "unknown"
