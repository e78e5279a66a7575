"""The plugin's hooks for a run: registered by `synthetic.plugin` once it
knows synthetic is in use, so an unrelated pytest run never imports this.
The work is elsewhere.

A check is evaluated where it runs (an xdist worker or the only process);
its `CheckResult` travels as plain JSON on the test report; the controller
gathers results, writes ``results.json`` and the state once, prints the
summary and sets the exit status from ``--fail-on``.
"""

from __future__ import annotations

import gc
import tempfile
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from synthetic import runner, stop, workers
from synthetic.catalogue import paths_named
from synthetic.controller import Controller
from synthetic.deadline import CLOCK_KEY
from synthetic.errors import ConfigError, SyntheticWarning
from synthetic.fixtures import (
    _synthetic_http,
    bff,
    http_client,
    log_analysis,
    postgres,
    redis_client,
    samples,
    synthetic_config,
    synthetic_env,
)
from synthetic.guard import RunGuard
from synthetic.run_state import (
    RUN_KEY,
    SPEC_KEY,
    RunState,
)
from synthetic.rundir import write_catalogue
from synthetic.spec import build_spec, is_check

__all__ = [
    "_synthetic_http",
    "bff",
    "http_client",
    "log_analysis",
    "postgres",
    "redis_client",
    "samples",
    "synthetic_config",
    "synthetic_env",
]

_CONFIG_ERROR_KEY = pytest.StashKey[str]()
_WHOLE_CATALOGUE_KEY = pytest.StashKey[bool]()  # no path given: the config's checks
_SPEC_ERROR_KEY = pytest.StashKey[bool]()  # a check's markers or overrides did not build


_ALLURE_KEY = pytest.StashKey[Any]()


def pytest_configure(config: pytest.Config) -> None:
    # Called when `synthetic.plugin` registers this module, from its own
    # trylast pytest_configure: after allure-pytest registered its file
    # writer, so the masker registered here is called before it.
    try:
        state = RunState.create(config)
    except ConfigError as exc:
        # Reported at session start, so --help and --markers still work.
        config.stash[_CONFIG_ERROR_KEY] = str(exc)
        return
    config.stash[RUN_KEY] = state
    if config.getoption("synthetic_default_checks"):
        _collect_configured_checks(config, state)
    if not state.is_worker:
        state.run_dir = Path(tempfile.mkdtemp(prefix="synthetic-run-"))
        guard = RunGuard(config, state)
        config.pluginmanager.register(guard, "synthetic-guard")
        config.pluginmanager.register(Controller(config, state, guard), "synthetic-controller")
        config.add_cleanup(workers.fork_workers())  # forks: what is imported here is paid once
    if config.getoption("allure_report_dir", None):
        from synthetic.outputs import allure_masking, allure_report

        config.stash[_ALLURE_KEY] = allure_masking.register(state.config.masker)
        allure_report.register(config)  # after the masker: called before it


def _collect_configured_checks(config: pytest.Config, state: RunState) -> None:
    # Done here, not by the command line, so xdist workers (which re-parse
    # the command line) collect the same paths as the controller.
    configured = [p for p in state.config.checks if p.exists()]
    given = config.args if config.args_source is pytest.Config.ArgsSource.ARGS else []
    # The synthetic command passes the configured directories as paths too, so
    # their conftests load early (pytest honours `pytest_plugins` only then).
    named = paths_named(given, configured, config.invocation_params.dir)
    if named:
        config.args = named  # a path on the command line replaces the config's checks
    elif configured:
        config.args = [str(p) for p in configured]
        config.stash[_WHOLE_CATALOGUE_KEY] = True
    else:
        wanted = ", ".join(str(p) for p in state.config.checks)
        config.stash[_CONFIG_ERROR_KEY] = (
            f"{state.config.source}: checks: no check directory found ({wanted}); "
            "pass a path or set `checks` in the config"
        )
        return
    config.args_source = pytest.Config.ArgsSource.ARGS


def pytest_unconfigure(config: pytest.Config) -> None:
    stop.close(config)
    plugin = config.stash.get(_ALLURE_KEY, None)
    if plugin is not None:
        from synthetic.outputs import allure_masking, allure_report

        allure_masking.unregister(plugin)
        allure_report.unregister(config)


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
                # The run stops on it; the override warning below stays quiet
                # (its metric's check may be the one that failed to build).
                collector.config.stash[_SPEC_ERROR_KEY] = True
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
def pytest_collection_finish(session: pytest.Session) -> None:
    # tryfirst: the catalogue is written before xdist tells the controller
    # collection is done, and before the guard plans the run's deadline.
    state = session.config.stash.get(RUN_KEY, None)
    if state is not None and state.run_dir is not None:
        write_catalogue(state.run_dir, runner.placeholders(session.items, state))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    return stop.set_timer(item, settings)  # checks only: what they wait on, a hard deadline


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    return stop.cancel_timer(item)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    clock = item.config.stash.get(CLOCK_KEY, None)  # set only where the controller runs checks
    if clock is None or not clock.passed():
        return None
    # The run's time ran out between two checks: the rest are not started.
    item.session.shouldfail = f"run deadline ({clock.timeout_s:g} s, run_timeout_s)"
    return True


def pytest_enter_pdb(config: pytest.Config) -> None:
    stop.pause(config)  # a person is debugging: no hard deadline for the check


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: before -k/-m deselect anything. Only when the whole catalogue
    # was collected (the synthetic command with no path): a typo in a metric
    # id must not silently leave production on the code's thresholds.
    state = config.stash.get(RUN_KEY, None)
    if state is None or not config.stash.get(_WHOLE_CATALOGUE_KEY, False):
        return
    if config.stash.get(_SPEC_ERROR_KEY, False):
        return
    specs = [spec for item in items if (spec := item.stash.get(SPEC_KEY, None))]
    measured = {name for spec in specs for name in (spec.metric, spec.display_name)}
    environment = state.config.environment
    for metric in sorted(set(environment.thresholds) - measured):
        warnings.warn(
            SyntheticWarning(
                f"{state.config.source}: environments.{environment.name}.thresholds."
                f'"{metric}": no check measures this metric (a typo?); the override does nothing'
            ),
            stacklevel=1,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    # The `synthetic` command paused the collector for its start (`synthetic.__main__`):
    # what exists now lasts the run; the checks' garbage is collected as usual.
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    spec = pyfuncitem.stash.get(SPEC_KEY, None)
    if spec is None:
        return (yield)
    with runner.capture_return(pyfuncitem) as returned:
        handled = yield
    runner.evaluate_returned(pyfuncitem, spec, returned)
    return handled


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # trylast: the innermost wrapper, so the masking below happens before any
    # other plugin (JUnit, Allure) reads the exception or the report.
    state = item.config.stash.get(RUN_KEY, None)
    spec = item.stash.get(SPEC_KEY, None)
    if state is not None:
        runner.before_report(call, spec, state)
    report = yield
    if state is None:
        return report
    if spec is not None and call.when != "teardown":
        runner.record_result(item, call, report, spec, state)
    runner.mask_report(report, state)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    data = getattr(report, "synthetic", None)
    if data is None:
        return None
    return runner.STATUS[data["severity"]]
