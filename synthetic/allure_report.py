"""What a check adds to its Allure result: severity, labels, runbook, value, evidence.

Called in the test process while the check runs (allure-pytest acts on the
test that is running), right after evaluation and before a breach is raised.
The value and evidence come from a masked `CheckResult`; allure_masking masks
what allure-pytest writes besides.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from synthetic.outcome import Outcome
from synthetic.results import Severity
from synthetic.session import RunState
from synthetic.spec import CheckSpec

SEVERITY_BY_PRIORITY = {"P1": "blocker", "P2": "critical", "P3": "normal", "P4": "minor"}


def is_active(config: pytest.Config) -> bool:
    """Whether allure-pytest is writing results (``--alluredir`` given)."""
    return bool(config.getoption("allure_report_dir", None))


def annotate(item: pytest.Item, spec: CheckSpec, outcome: Outcome, state: RunState) -> None:
    """Add the check's Allure labels, link, parameters and evidence; a no-op without Allure."""
    if not is_active(item.config):
        return
    import allure

    dynamic: Any = allure.dynamic  # allure-commons leaves these untyped
    result = state.make_result(item, spec, outcome, 0.0)
    dynamic.severity(SEVERITY_BY_PRIORITY.get(spec.priority, "normal"))
    dynamic.label("environment", state.config.environment.name)
    if spec.component:
        dynamic.label("component", spec.component)
    dynamic.label("metric", spec.display_name)
    dynamic.label("synthetic_severity", result.severity.value)
    if result.severity is Severity.WARNING:
        dynamic.tag("warning")
    if spec.runbook:
        dynamic.link(spec.runbook, name="runbook")
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
