"""The controller process's hooks: gather results, write them, summarise, decide.

Registered by the plugin only where results are decided: the only process of
a serial run, or the controller of an xdist run (never a worker).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from synthetic.guard import RunGuard
from synthetic.outcome import one_line
from synthetic.outputs.summary import headline, table
from synthetic.results import CheckResult, RunResult
from synthetic.run_state import RunState


class Controller:
    """Hooks of the controller process: gather, write, summarise, exit status.

    Registered only where results are decided (never on an xdist worker).
    """

    def __init__(self, config: pytest.Config, state: RunState, guard: RunGuard) -> None:
        self.config = config
        self.state = state
        self.guard = guard

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        # xdist: every worker's correlation ids name this one run.
        node.workerinput["synthetic_run_id"] = self.state.run_id
        node.workerinput["synthetic_started_at"] = self.state.started_at
        node.workerinput["synthetic_run_dir"] = str(self.state.run_dir)

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
        try:
            self._finish(session)
        finally:
            self.guard.end_workers()

    def _finish(self, session: pytest.Session) -> None:
        state = self.state
        if session.exitstatus in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR):
            state.interrupted = True
        self.guard.settle(fill=not self.config.option.collectonly)
        if self.config.option.collectonly:
            return
        if not state.results and not self.config.getoption("synthetic_default_checks"):
            return  # a session of ordinary tests: nothing of ours to write
        run = state.finish()
        state.results_path = state.write_results(run)
        state.save_state(run)
        self.config.hook.pytest_synthetic_run_finished(run=run, config=self.config)
        self._history(run)
        self._github_summary(run)
        self._allure(run)
        self._export(run)
        self._alert(run)
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            # A failing ordinary test or a collection error fails pytest's status
            # whatever --fail-on says; the rest is the run's one answer.
            failed = bool(state.errors) or run.fails(state.fail_on)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK

    def _history(self, run: RunResult) -> None:
        """Append to the history the config names (never in a round of `serve`,
        whose runner writes it)."""
        if self.state.config.history is None:
            return
        from synthetic.history.hook import SERVED_KEY, append_run

        if self.config.stash.get(SERVED_KEY, False):
            return
        note = append_run(run, self.state.config, self.state.results_dir)
        if note:
            self.state.notes.append(note)

    def _export(self, run: RunResult) -> None:
        settings = self.state.config.environment.exporters
        if not settings.model_dump(exclude_defaults=True):
            return
        from synthetic.exporters import export_all

        self.state.exports = export_all(run, settings, masker=self.state.config.masker)

    def _allure(self, run: RunResult) -> None:
        directory = self.config.getoption("allure_report_dir", None)
        if not directory:
            return
        from synthetic.outputs.allure_report import write_run_files
        from synthetic.run_state import option

        try:
            write_run_files(
                Path(directory),
                run,
                version=option(self.config, "synthetic_target_version"),
                masker=self.state.config.masker,
            )
        except OSError as exc:
            self.state.notes.append(one_line(f"allure: cannot write to {directory}: {exc}"))

    def _github_summary(self, run: RunResult) -> None:
        """In a GitHub Actions job, the results table goes to the job's summary page."""
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if not path:
            return
        from synthetic.outputs.formats import github_summary

        try:
            with open(path, "a", encoding="utf-8") as summary:
                summary.write(self.state.config.masker.text(github_summary(run)))
        except OSError as exc:
            self.state.notes.append(f"GITHUB_STEP_SUMMARY: cannot write {path}: {exc.strerror}")

    def _alert(self, run: RunResult) -> None:
        state = self.state
        if state.alerts_mode == "off":
            return
        from synthetic.alerts import pipeline  # only when alerting

        hook = self.config.hook
        try:
            report = pipeline.process(
                run,
                config=state.config,
                mode=state.alerts_mode,
                results_dir=state.results_dir,
                payload_hook=lambda receiver, alert, request: hook.pytest_synthetic_alert_payload(
                    receiver=receiver, alert=alert, request=request, config=self.config
                ),
                send_hook=lambda receiver, alert, request: hook.pytest_synthetic_alert_send(
                    receiver=receiver, alert=alert, request=request, config=self.config
                ),
            )
            pipeline.write_report(report, state.results_dir, masker=state.config.masker)
        except Exception as exc:  # alerting must never cost the run its results
            state.notes.append(one_line(f"alerts: failed: {type(exc).__name__}: {exc}"))
            return
        state.alert_report = report
        state.notes.extend(report.notes)

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
        if self.state.exports:
            terminalreporter.section("synthetic exporters", sep="-")
            for line in self.state.exports:
                terminalreporter.line(line, red=": failed: " in line)
        report = self.state.alert_report
        if report is not None:
            from synthetic.alerts.pipeline import summary_lines

            terminalreporter.section(f"synthetic alerts ({report.mode})", sep="-")
            receivers = len(self.state.config.alerts.receivers)
            for line in summary_lines(report, receivers=receivers) or ["nothing to tell anyone"]:
                terminalreporter.line(masker.text(line))
        for note in self.state.notes:
            terminalreporter.line(masker.text(note), yellow=True)
