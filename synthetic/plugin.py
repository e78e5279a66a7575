"""The pytest plugin: options, markers and hook wiring. The work is elsewhere.

A check is evaluated where it runs (an xdist worker or the only process);
its `CheckResult` travels as plain JSON on the test report; the controller
gathers results, writes ``results.json`` and the state once, prints the
summary and sets the exit status from ``--fail-on``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from synthetic import hookspecs
from synthetic.errors import ConfigError, MeasurementError, SyntheticWarning, ThresholdBreach
from synthetic.fixtures import (
    _synthetic_http,
    bff,
    postgres,
    redis_client,
    samples,
    synthetic_config,
    synthetic_env,
)
from synthetic.outcome import Outcome, classify, evaluate, one_line
from synthetic.redact import mask_exception
from synthetic.results import CheckResult, Severity, fails
from synthetic.session import (
    OPTIONS,
    OUTCOME_KEY,
    RUN_KEY,
    SPEC_KEY,
    RunState,
)
from synthetic.spec import MARKER_DOCS, CheckSpec, build_spec, is_check
from synthetic.summary import headline, table

__all__ = [
    "_synthetic_http",
    "bff",
    "postgres",
    "redis_client",
    "samples",
    "synthetic_config",
    "synthetic_env",
]

# Exceptions a check raises on purpose, already carrying the reason to show.
_REASONED = (ThresholdBreach, MeasurementError)
_CONFIG_ERROR_KEY = pytest.StashKey[str]()

# (category, letter, word) per severity. A warning is not a failure but has
# its own letter and word; a critical breach is a failure.
_STATUS: dict[str, tuple[str, str, tuple[str, dict[str, bool]]]] = {
    "ok": ("passed", ".", ("OK", {"green": True})),
    "warning": ("warned", "W", ("WARNING", {"yellow": True})),
    "critical": ("failed", "F", ("CRITICAL", {"red": True})),
    "unknown": ("unknown", "U", ("UNKNOWN", {"purple": True})),
    "skipped": ("skipped", "s", ("SKIPPED", {"yellow": True})),
}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synthetic", "synthetic monitoring")
    for opt in OPTIONS:
        default = f" Default: {opt.default}." if opt.default else ""
        where = f" (env: {opt.envvar}, ini: {opt.ini})"
        group.addoption(
            *opt.flags,
            dest=opt.dest,
            default=None,
            choices=opt.choices,
            help=opt.help + "." + default + where,
        )
        parser.addini(opt.ini, help=opt.help, default=None)
    group.addoption(
        "--synthetic-default-checks",
        action="store_true",
        default=False,
        help="when no path is given, collect the config's `checks` paths (the synthetic "
        "command sets this).",
    )


_ALLURE_KEY = pytest.StashKey[Any]()


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # trylast: after allure-pytest registered its file writer, so the masker
    # registered here is called before it.
    for doc in MARKER_DOCS.values():
        config.addinivalue_line("markers", doc)
    try:
        state = RunState.create(config)
    except ConfigError as exc:
        # Reported at session start, so --help and --markers still work.
        config.stash[_CONFIG_ERROR_KEY] = str(exc)
        return
    config.stash[RUN_KEY] = state
    if config.getoption("synthetic_default_checks") and (
        config.args_source is not pytest.Config.ArgsSource.ARGS
    ):
        _collect_configured_checks(config, state)
    if not state.is_worker:
        config.pluginmanager.register(Controller(config, state), "synthetic-controller")
    if config.getoption("allure_report_dir", None):
        from synthetic import allure_masking

        config.stash[_ALLURE_KEY] = allure_masking.register(state.config.masker)


def _collect_configured_checks(config: pytest.Config, state: RunState) -> None:
    # Done here, not by the command line, so xdist workers (which re-parse
    # the command line) collect the same paths as the controller.
    paths = [str(p) for p in state.config.checks if p.exists()]
    if not paths:
        wanted = ", ".join(str(p) for p in state.config.checks)
        config.stash[_CONFIG_ERROR_KEY] = (
            f"{state.config.source}: checks: no check directory found ({wanted}); "
            "pass a path or set `checks` in the config"
        )
        return
    config.args = paths
    config.args_source = pytest.Config.ArgsSource.ARGS


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.stash.get(_ALLURE_KEY, None)
    if plugin is not None:
        from synthetic import allure_masking

        allure_masking.unregister(plugin)


def pytest_sessionstart(session: pytest.Session) -> None:
    error = session.config.stash.get(_CONFIG_ERROR_KEY, None)
    if error is not None:
        raise pytest.UsageError(error)


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, Any, Any]:
    made = yield
    state = collector.config.stash.get(RUN_KEY, None)
    if state is None or made is None:
        return made
    for item in made if isinstance(made, list) else [made]:
        if isinstance(item, pytest.Function) and is_check(item):
            try:
                item.stash[SPEC_KEY] = build_spec(
                    item,
                    environment=state.config.environment,
                    runbooks=state.config.runbooks,
                    config_source=state.config.source,
                )
            except ConfigError as exc:
                raise pytest.Collector.CollectError(str(exc)) from None
            if (
                item.get_closest_marker("timeout") is None
                and collector.config.getoption("timeout", None) is None
            ):
                # Every check is bounded (pytest-timeout); a check that runs out
                # of time is unreachable. A --timeout given on the command line wins.
                timeout = state.config.environment.check_timeout_s
                item.add_marker(pytest.mark.timeout(timeout))
    return made


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: before -k/-m deselect anything. Only when the whole catalogue
    # was collected (the synthetic command with no path): a typo in a metric
    # id must not silently leave production on the code's thresholds.
    state = config.stash.get(RUN_KEY, None)
    if state is None or not config.getoption("synthetic_default_checks"):
        return
    measured = {spec.metric for item in items if (spec := item.stash.get(SPEC_KEY, None))}
    environment = state.config.environment
    for metric in sorted(set(environment.thresholds) - measured):
        warnings.warn(
            SyntheticWarning(
                f"{state.config.source}: environments.{environment.name}.thresholds."
                f'"{metric}": no check measures this metric (a typo?); the override does nothing'
            ),
            stacklevel=1,
        )


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    spec = pyfuncitem.stash.get(SPEC_KEY, None)
    if spec is None:
        return (yield)
    returned: list[Any] = []
    original = pyfuncitem.obj

    @functools.wraps(original)
    def measure(*args: Any, **kwargs: Any) -> None:
        returned.append(original(*args, **kwargs))

    pyfuncitem.obj = measure
    try:
        handled = yield
    finally:
        pyfuncitem.obj = original
    value = returned[0] if returned else None
    if inspect.iscoroutine(value):
        value = asyncio.run(value)
    outcome = evaluate(spec, value)
    pyfuncitem.stash[OUTCOME_KEY] = outcome
    _raise_for(outcome, spec.metric)
    return handled


def _raise_for(outcome: Outcome, metric: str) -> None:
    __tracebackhide__ = True
    # Raised inside the call, so every reporter (JUnit, Allure) sees a
    # critical breach as a failure and a failure to measure as broken.
    if outcome.severity is Severity.CRITICAL:
        raise ThresholdBreach(outcome.reason, metric=metric, value=outcome.value, limit="critical")
    if outcome.severity is Severity.UNKNOWN:
        raise MeasurementError(outcome.reason)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # trylast: the innermost wrapper, so the masking below happens before any
    # other plugin (JUnit, Allure) reads the exception or the report.
    state = item.config.stash.get(RUN_KEY, None)
    spec = item.stash.get(SPEC_KEY, None)
    if state is not None and call.excinfo is not None:
        mask_exception(call.excinfo.value, state.config.masker)
        if spec is not None and classify(spec, call.excinfo.value).unreachable:
            # Only the reason is shown for an unreachable target: spare pytest
            # formatting a deep client traceback (reading each frame's source).
            call.excinfo.traceback = call.excinfo.traceback[-1:]
    report = yield
    if state is None:
        return report
    if spec is not None and call.when != "teardown":
        _record_result(item, call, report, spec, state)
    _mask_report(report, state)
    return report


def _record_result(
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


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def _mask_report(report: pytest.TestReport, state: RunState) -> None:
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


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    data = getattr(report, "synthetic", None)
    if data is None:
        return None
    return _STATUS[data["severity"]]


class Controller:
    """Hooks of the controller process: gather, write, summarise, exit status.

    Registered only where results are decided (never on an xdist worker).
    """

    def __init__(self, config: pytest.Config, state: RunState) -> None:
        self.config = config
        self.state = state

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # xdist: every worker's correlation ids name this one run.
        node.workerinput["synthetic_run_id"] = self.state.run_id
        node.workerinput["synthetic_started_at"] = self.state.started_at

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "synthetic", None)
        if data is not None:
            result = CheckResult.from_json(data)
            self.state.results[result.id] = result
            self.config.hook.pytest_synthetic_result(result=result, config=self.config)
        elif report.failed:
            # A failure with no check result: an ordinary test, a teardown
            # error, or a check whose worker crashed. The run is incomplete.
            what = report.longreprtext.strip().splitlines()[-1:] or ["failed"]
            self.state.errors.append(one_line(f"{report.nodeid} ({report.when}): {what[0]}"))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.state.errors.append(one_line(f"{report.nodeid or 'collection'}: collection error"))

    def pytest_keyboard_interrupt(self) -> None:
        self.state.interrupted = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        state = self.state
        if session.exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR):
            state.interrupted = True
        if self.config.option.collectonly:
            return
        if not state.results and not self.config.getoption("synthetic_default_checks"):
            return  # a session of ordinary tests: nothing of ours to write
        run = state.finish()
        state.results_path = state.write_results(run)
        state.save_state(run)
        self.config.hook.pytest_synthetic_run_finished(run=run, config=self.config)
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            failed = bool(state.errors) or fails(run.worst, state.fail_on)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        run = self.state.run
        if run is None:
            return
        masker = self.state.config.masker
        width = self.config.get_terminal_writer().fullwidth
        unknown = terminalreporter.stats.get("unknown", [])
        if unknown and self.config.getoption("tbstyle", "auto") != "no":
            # pytest lists failures only; a check that could not measure is
            # often a bug in the check, and its traceback says where.
            terminalreporter.section("could not measure (UNKNOWN)", sep="=")
            for report in unknown:
                terminalreporter.section(report.head_line or report.nodeid, sep="_")
                terminalreporter.line(masker.text(report.longreprtext))
        terminalreporter.section("synthetic summary", sep="=")
        for line in table(run, width=width):
            terminalreporter.line(masker.text(line))
        terminalreporter.line("")
        terminalreporter.line(masker.text(headline(run)))
        if self.state.results_path is not None:
            terminalreporter.line(f"results: {self.state.results_path}")
        for note in self.state.notes:
            terminalreporter.line(masker.text(note), yellow=True)
