"""Running one check where it runs (the only process, or an xdist worker).

The value a check returns is captured around pytest's own call, evaluated,
and a critical breach or a failure to measure is raised inside the call, so
every reporter (JUnit, Allure) sees the status the terminal shows. The
result is put on the report as plain JSON, masked, for the controller.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from synthetic.errors import MeasurementError, ThresholdBreach
from synthetic.outcome import Outcome, classify, evaluate, one_line
from synthetic.outputs import allure_report
from synthetic.outputs.formats import junit_properties
from synthetic.redact import mask_exception
from synthetic.results import Severity
from synthetic.run_state import OUTCOME_KEY, SPEC_KEY, RunState
from synthetic.rundir import Placeholder
from synthetic.spec import CheckSpec

# Exceptions a check raises on purpose, already carrying the reason to show.
_REASONED = (ThresholdBreach, MeasurementError)

# (category, letter, word) per severity. A warning is not a failure but has
# its own letter and word; a critical breach is a failure.
STATUS: dict[str, tuple[str, str, tuple[str, dict[str, bool]]]] = {
    "ok": ("passed", ".", ("OK", {"green": True})),
    "warning": ("warned", "W", ("WARNING", {"yellow": True})),
    "critical": ("failed", "F", ("CRITICAL", {"red": True})),
    "unknown": ("unknown", "U", ("UNKNOWN", {"purple": True})),
    "skipped": ("skipped", "s", ("SKIPPED", {"yellow": True})),
}


@contextlib.contextmanager
def capture_return(item: pytest.Function) -> Iterator[list[Any]]:
    """Swap the check function for one that keeps its return value.

    pytest's own call runs it (fixtures, async detection and all); the list
    yielded holds what it returned once the call is done.
    """
    returned: list[Any] = []
    original = item.obj

    @functools.wraps(original)
    def measure(*args: Any, **kwargs: Any) -> None:
        returned.append(original(*args, **kwargs))

    item.obj = measure
    try:
        yield returned
    finally:
        item.obj = original


def evaluate_returned(item: pytest.Function, spec: CheckSpec, returned: list[Any]) -> None:
    """Evaluate the captured value; raise for a critical breach or an UNKNOWN."""
    __tracebackhide__ = True
    value = returned[0] if returned else None
    if inspect.iscoroutine(value):
        import asyncio  # only for a check that is a coroutine: asyncio costs every run 10 ms

        value = asyncio.run(value)
    outcome = evaluate(spec, value)
    item.stash[OUTCOME_KEY] = outcome
    _raise_for(outcome, spec)


def _raise_for(outcome: Outcome, spec: CheckSpec) -> None:
    __tracebackhide__ = True
    # Raised inside the call, so every reporter (JUnit, Allure) sees a
    # critical breach as a failure and a failure to measure as broken.
    if outcome.severity is Severity.CRITICAL:
        threshold = spec.critical.text if spec.critical else None
        raise ThresholdBreach(
            outcome.reason, metric=spec.display_name, value=outcome.value, threshold=threshold
        )
    if outcome.severity is Severity.UNKNOWN:
        raise MeasurementError(outcome.reason)


def before_report(call: pytest.CallInfo[None], spec: CheckSpec | None, state: RunState) -> None:
    """Prepare the exception before pytest and any reporter formats it."""
    excinfo = call.excinfo
    if excinfo is None:
        return
    mask_exception(excinfo.value, state.config.masker)
    if spec is None:
        return
    outcome = classify(spec, excinfo.value)
    if outcome.unreachable or outcome.severity is Severity.SKIPPED:
        # Only the reason is shown for an unreachable target or a check that
        # is not configured (`record_result`): spare pytest formatting the
        # traceback and the chain of exceptions behind it, which it would do by
        # finding each frame's module and parsing its whole file.
        excinfo.traceback = excinfo.traceback[:0]
        excinfo.value.__cause__ = None  # and so __suppress_context__: no chain either


def record_result(
    item: pytest.Item,
    call: pytest.CallInfo[None],
    report: pytest.TestReport,
    spec: CheckSpec,
    state: RunState,
) -> None:
    outcome: Outcome | None = None
    excinfo = call.excinfo
    if report.skipped:
        outcome = Outcome(Severity.SKIPPED, one_line(_skip_reason(report)), unit=spec.unit)
    elif excinfo is None:
        outcome = item.stash.get(OUTCOME_KEY, None) if call.when == "call" else None
    elif isinstance(excinfo.value, _REASONED) and OUTCOME_KEY in item.stash:
        outcome = item.stash[OUTCOME_KEY]
        report.longrepr = outcome.reason
    else:
        outcome = classify(spec, excinfo.value)
        if outcome.severity is Severity.SKIPPED:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, outcome.reason)
        elif outcome.unreachable:
            # The target did not answer: the reason says what and where; a
            # traceback through the HTTP stack would only bury it.
            report.longrepr = outcome.reason
    if outcome is not None:
        result = state.make_result(item, spec, outcome, call.duration)
        report.synthetic = result.to_json()  # type: ignore[attr-defined]
        # JUnit XML takes a test case's properties from the teardown report,
        # made from item.user_properties after this.
        item.user_properties.extend(junit_properties(result))
        allure_report.annotate(item, result, state.config.environment.name)


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def mask_report(report: pytest.TestReport, state: RunState) -> None:
    """Mask what a report shows: its failure text and captured output, every phase."""
    masker = state.config.masker
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        path, line, reason = longrepr
        report.longrepr = (path, line, masker.text(reason))
    elif longrepr is not None:
        text = str(longrepr)
        masked = masker.text(text)
        if masked != text:
            report.longrepr = masked
    report.sections = [(title, masker.text(content)) for title, content in report.sections]


def placeholders(items: list[pytest.Item], state: RunState) -> dict[str, Placeholder]:
    """Each check among ``items`` as the controller can report it without running it
    (`synthetic.rundir`): its result with no outcome yet, and its time limit."""
    found = {}
    for item in items:
        spec = item.stash.get(SPEC_KEY, None)
        if spec is None:
            continue
        blank = state.make_result(item, spec, Outcome(Severity.UNKNOWN, "", unit=spec.unit), 0.0)
        found[item.nodeid] = Placeholder(
            result=blank.to_json(),
            name=spec.display_name,
            unreachable=spec.unreachable.value,
            limit_s=_limit(item, state.config.environment.check_timeout_s),
        )
    return found


def _limit(item: pytest.Item, default: float) -> float:
    """The check's time limit as pytest-timeout reads it: marker, --timeout, else ours."""
    marker = item.get_closest_marker("timeout")
    value = None
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
    if value is None:
        value = item.config.getoption("timeout", None)
    try:
        return float(value) if value is not None else default
    except (TypeError, ValueError):
        return default
