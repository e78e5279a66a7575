"""A round's process: the pytest session of one round, forked from the warm zygote.

It runs the checks in its own process (no xdist worker to start: the
zygote above it is the watchdog) and streams what it learns to the zygote,
one JSON line per event, as it happens: its run's scratch directory, each
check's result as it completes, the run's deadline once the checks are
known, the verdict, and the notes once alerts are done. A round killed
half-way therefore keeps every result it had sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from synthetic.deadline import CLOCK_KEY
from synthetic.history.hook import SERVED_KEY
from synthetic.results import CheckResult, RunResult
from synthetic.run_state import run_state


class RoundReporter:
    """Registered in the round's pytest session: events to the zygote."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()  # the guard's thread may send the verdict

    def send(self, event: dict[str, Any]) -> None:
        data = (json.dumps(event) + "\n").encode()
        with self._lock:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        config.stash[SERVED_KEY] = True  # the runner writes the history, not this round

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        with contextlib.suppress(pytest.UsageError):
            state = run_state(session.config)
            self.send({"run_id": state.run_id, "run_dir": str(state.run_dir or "")})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        # The checks are known and the guard has planned the run's deadline.
        clock = session.config.stash.get(CLOCK_KEY, None)
        if clock is not None and clock.deadline is not None:
            self.send({"deadline": clock.deadline, "timeout_s": clock.timeout_s})

    def pytest_synthetic_result(self, result: CheckResult, config: pytest.Config) -> None:
        self.send({"result": result.to_json()})

    def pytest_synthetic_run_finished(self, run: RunResult, config: pytest.Config) -> None:
        path = run_state(config).results_path
        self.send(
            {
                "verdict": {**run.to_json(), "interrupted": run.interrupted},
                "results_path": str(path) if path else None,
                "at": time.monotonic(),
            }
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        with contextlib.suppress(pytest.UsageError):
            self.send({"notes": list(run_state(config).notes)})


def run_round(pytest_args: list[str], fd: int, log: Path) -> None:
    """The child's whole life: pytest with its output in ``log``, then ``os._exit``
    (a thread a check leaked does not hold the round)."""
    code: int | None = None
    try:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        reporter = RoundReporter(fd)
        code = int(pytest.main(pytest_args, plugins=[reporter]))
        reporter.send({"end": code})
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(0)
