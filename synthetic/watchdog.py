"""The controller's watchdog: checks that do not stop, and the run's deadline.

A thread of the controller process, which never runs a check when there are
workers, reads the run's scratch directory (`synthetic.rundir`) every
`TICK_S` and tells the controller (`Duties`):

- a check past its hard deadline (its limit plus `synthetic.deadline.GRACE_S`)
  did not stop when told: ``overran``. The controller kills its worker, a
  signal that needs nothing from the check, and xdist reports the check
  crashed; without workers the check runs in the controller's own process,
  so the run is abandoned instead, with what it has;
- the run's deadline passed: ``deadline``, once. The controller leaves xdist's
  loop and ends the workers; without workers the running check's own timer
  stops it (`synthetic.stop`);
- `FINISH_GRACE_S` after the deadline the run has not begun to finish (a
  check that ignored its stop without workers, a hook that hangs):
  ``abandon``. The controller writes results.json with what it has, and exits.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

from synthetic.deadline import RunClock
from synthetic.rundir import Status, statuses

TICK_S = 0.05
FINISH_GRACE_S = 1.0  # after the deadline, for the controller to begin finishing


class Duties(Protocol):
    def overran(self, status: Status) -> None: ...

    def deadline(self, running: list[Status]) -> None: ...

    def abandon(self, why: str, running: list[Status]) -> None: ...

    def finishing(self) -> bool: ...


class Watchdog:
    def __init__(self, run_dir: Path, clock: RunClock, duties: Duties) -> None:
        self.run_dir = run_dir
        self.clock = clock
        self.duties = duties
        self.cut = False  # the deadline passed and the controller was told
        self._told: set[tuple[str, int, str]] = set()  # (worker, pid, check) already stopped
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="synthetic-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(TICK_S):
            if self.duties.finishing():
                return
            self.tick(time.monotonic())

    def tick(self, now: float) -> None:
        running = [status for status in statuses(self.run_dir) if status.check]
        for status in running:
            assert status.check is not None
            key = (status.worker, status.pid, status.check)
            if status.deadline is not None and now > status.deadline and key not in self._told:
                self._told.add(key)
                self.duties.overran(status)
        deadline = self.clock.deadline
        if deadline is None or now <= deadline:
            return
        if not self.cut:
            self.cut = True
            self.duties.deadline(running)
        elif now > deadline + FINISH_GRACE_S:
            self.duties.abandon(f"run deadline, {self.clock.timeout_s:g} s", running)
