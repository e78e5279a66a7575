"""The controller's guard: every check gets a result, and the run ends in time.

Registered beside the controller (`synthetic.controller`), never on a worker.
It keeps the run's clock (`synthetic.deadline`), runs the watchdog
(`synthetic.watchdog`) and does its duties:

- a check that did not stop: its worker is killed; xdist reports the check
  crashed (``pytest_handlecrashitem``) and the guard gives it the result the
  watchdog saw coming (`synthetic.blame`); a crash nobody caused is the check
  ending its own process (``os._exit``): UNKNOWN, and the run is incomplete;
- the run's deadline: xdist's loop is left, the workers are ended, and the
  checks not done are UNKNOWN "run deadline";
- the last resort (`abandon`): results.json from here, with what the run has,
  then the process exits: a run always leaves a verdict.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Generator
from typing import Any

import pytest

from synthetic import blame, rundir, workers
from synthetic.deadline import CLOCK_KEY, RunClock
from synthetic.outcome import one_line
from synthetic.results import CheckResult
from synthetic.run_state import RunState
from synthetic.rundir import Placeholder, Status
from synthetic.watchdog import Watchdog

WORKER_EXIT_S = 1.0  # for a finished worker to exit before it is killed
ABANDONED = 3  # the exit status of an abandoned run (pytest's INTERNAL_ERROR, Nagios UNKNOWN)


class RunGuard:
    """Hooks of the controller process that keep a run bounded and its verdict whole."""

    def __init__(self, config: pytest.Config, state: RunState) -> None:
        assert state.run_dir is not None
        self.config = config
        self.state = state
        self.run_dir = state.run_dir
        self.clock: RunClock | None = None
        self.watchdog: Watchdog | None = None
        self.stopped: dict[str, Status] = {}  # checks whose worker the watchdog killed
        self.cut_running: set[str] = set()  # checks under way at the run's deadline
        self._lock = threading.Lock()
        self._finishing = False

    # -- hooks --------------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        config = self.config
        if config.option.collectonly:
            return
        debugging = bool(config.getoption("usepdb", False) or config.getoption("trace", False))
        configured = self.state.config.environment.run_timeout_s
        self.clock = RunClock(
            None if debugging else configured,
            default=bool(config.getoption("synthetic_default_checks")) and not debugging,
        )
        if not workers.distributed(config):
            config.stash[CLOCK_KEY] = self.clock  # the checks run here: their stop obeys it
        self.watchdog = Watchdog(self.run_dir, self.clock, self)
        self.watchdog.start()

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._plan()  # without workers; trylast: after the catalogue is written

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._plan()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        if nodeid == workers.STOP_NODEID:
            raise workers.LeaveLoop

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        try:
            return (yield)
        except workers.LeaveLoop:
            workers.end_all(self.config, timeout_s=0.5)
            return True

    @pytest.hookimpl(optionalhook=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: Any) -> None:
        placeholder = rundir.read_catalogue(self.run_dir).get(crashitem)
        if placeholder is None:
            return  # an ordinary test: xdist's report stands
        status = self.stopped.pop(crashitem, None)
        if status is None:
            told = blame.exited()
        elif crashitem in self.cut_running:
            told = self._run_deadline(started=True)
        else:
            told = blame.stopped(status.limit_s, status.waiting, after="its worker")
        result = placeholder.outcome(told, self.state.config.masker)
        report.longrepr = result.reason
        if crashitem in self.state.results:
            return  # it had reported: its teardown is what did not end (an error, below)
        report.synthetic = result.to_json()  # type: ignore[attr-defined]
        if status is None:
            self.state.errors.append(one_line(f"{crashitem}: {told.reason}"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        rundir.forget(self.run_dir, str(node.gateway.id))  # its pid is never signalled again

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- what the controller asks -------------------------------------------------------------

    def settle(self, *, fill: bool) -> None:
        """The run finishes from here: no more watchdog, and with ``fill`` every check
        collected has a result (those that have none are UNKNOWN, saying why)."""
        with self._lock:
            self._finishing = True
        if self.watchdog is not None:
            self.watchdog.stop()
        if not fill or self.state.interrupted:
            return
        cut = self.clock is not None and self.clock.passed()
        missing = self._results_for(self._missing(), why="the run stopped before it")
        self.state.results.update(missing)
        if missing and cut:
            self.state.errors.append(
                f"run deadline: the run's {self._timeout_s:g} s (run_timeout_s) ran out with "
                f"{len(missing)} check(s) not done"
            )
        elif missing:
            self.state.errors.append(f"{len(missing)} check(s) did not run")
        elif cut and not self.state.results:
            self.state.errors.append(
                f"run deadline: the run's {self._timeout_s:g} s (run_timeout_s) ran out before "
                "any check was collected"
            )

    def end_workers(self) -> None:
        """Workers that have finished are not waited for (a thread they leaked
        would hold the run): asked to exit, killed after `WORKER_EXIT_S`."""
        workers.end_all(self.config, timeout_s=WORKER_EXIT_S)

    # -- the watchdog's duties (its thread) ---------------------------------------------------

    def finishing(self) -> bool:
        return self._finishing

    def overran(self, status: Status) -> None:
        assert status.check is not None
        if status.pid == os.getpid():  # no workers: the check runs in this very process
            told = f"{status.check} ran past its deadline ({status.limit_s:g} s) and did not stop"
            self.abandon(told, [status])
            return
        now = {s.worker: s for s in rundir.statuses(self.run_dir)}.get(status.worker)
        if now is None or (now.pid, now.check) != (status.pid, status.check):
            return  # it finished that check as the watchdog looked: nothing to stop
        self.stopped[status.check] = status
        workers.kill(status.pid)

    def deadline(self, running: list[Status]) -> None:
        if not workers.distributed(self.config):
            return  # the running check's own timer stops it (synthetic.stop)
        self.cut_running = {status.check for status in running if status.check}
        if workers.leave_loop(self.config):  # queued before any worker's death
            for status in running:
                workers.kill(status.pid)

    def abandon(self, why: str, running: list[Status]) -> None:
        """The last resort: results.json with what the run has, then exit."""
        with self._lock:
            if self._finishing:
                return
            self._finishing = True
            state = self.state
            stopped = {}
            for status in running:
                assert status.check is not None
                if self.clock is not None and self.clock.passed():
                    stopped[status.check] = self._run_deadline(started=True)
                else:
                    stopped[status.check] = blame.stopped(
                        status.limit_s, status.waiting, after="the run"
                    )
            results = self._results_for(self._missing(), why=f"the run was stopped: {why}")
            # The checks under way are not "not run": they were stopped.
            catalogue = rundir.read_catalogue(self.run_dir)
            for node, told in stopped.items():
                if node in catalogue and node not in state.results:
                    results[node] = catalogue[node].outcome(told, state.config.masker)
            state.results = {**state.results, **results}
            state.errors.append(one_line(f"the run was stopped: {why}"))
            run = state.finish()
            state.results_path = state.write_results(run)
            self.config.hook.pytest_synthetic_run_finished(run=run, config=self.config)
            where = f"; results: {state.results_path}" if state.results_path else ""
            sys.stderr.write(state.config.masker.text(f"synthetic: {one_line(why)}{where}\n"))
            for status in rundir.statuses(self.run_dir):
                workers.kill(status.pid)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(ABANDONED)

    # -- helpers ------------------------------------------------------------------------------

    def _plan(self) -> None:
        if self.clock is not None:
            limits = [p.limit_s for p in rundir.read_catalogue(self.run_dir).values()]
            self.clock.plan(limits, workers.count(self.config))

    def _missing(self) -> dict[str, Placeholder]:
        catalogue = rundir.read_catalogue(self.run_dir)
        return {node: p for node, p in catalogue.items() if node not in self.state.results}

    @property
    def _timeout_s(self) -> float:
        return (self.clock.timeout_s if self.clock is not None else None) or 0.0

    def _run_deadline(self, *, started: bool) -> blame.Blame:
        return blame.run_deadline(self._timeout_s, started=started)

    def _results_for(self, missing: dict[str, Placeholder], *, why: str) -> dict[str, CheckResult]:
        cut = self.clock is not None and self.clock.passed()
        results = {}
        for node, placeholder in missing.items():
            stopped = self.stopped.get(node)
            if stopped is not None:  # its worker was killed; the crash was not heard of
                told = blame.stopped(stopped.limit_s, stopped.waiting, after="its worker")
            elif cut:
                told = self._run_deadline(started=node in self.cut_running)
            else:
                told = blame.not_run(why)
            results[node] = placeholder.outcome(told, self.state.config.masker)
        return results
