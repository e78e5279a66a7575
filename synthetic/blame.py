"""Whose fault a stopped or lost check is, said in one line.

- Stopped at its time limit while a call to its target was in flight: the
  target did not answer in time; the check is unreachable (CRITICAL, unless
  its metric marker says otherwise).
- Stopped anywhere else: it ran past its deadline on its own (a loop, a slow
  parse, a sleep): UNKNOWN.
- Stopped because the run's time ran out, or never started for that reason:
  UNKNOWN "run deadline".
- Its process ended under it (``os._exit``, a signal, a crash): UNKNOWN.

Pure: the reasons a check's stop (`synthetic.stop`) and the controller's
watchdog (`synthetic.watchdog`) give, without the check's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from synthetic.waits import Wait


@dataclass(frozen=True)
class Blame:
    reason: str  # one line, to follow "<check>: "
    via: str | None = None  # the client family that did not answer: unreachable

    @property
    def unreachable(self) -> bool:
        return self.via is not None


def stopped(limit_s: float, waiting: Wait | None, *, after: str | None = None) -> Blame:
    """A check stopped at its time limit of ``limit_s``.

    ``after`` is what had to be stopped because the check did not stop
    itself ("its worker", "the run"); None when it stopped when told.
    """
    ended = f"; the check did not stop, so {after} was stopped" if after else ""
    if waiting is not None:
        return Blame(
            f"unreachable: no answer from {waiting.what} within the check's time limit "
            f"({limit_s:g} s){ended}",
            via=waiting.kind,
        )
    if after:
        return Blame(f"the check ran past its deadline ({limit_s:g} s) and did not stop; {after} "
                     "was stopped")  # fmt: skip
    return Blame(
        f"the check ran past its deadline ({limit_s:g} s) while not waiting on the target; stopped"
    )


def run_deadline(run_timeout_s: float, *, started: bool) -> Blame:
    """The run's time ran out with this check under way (``started``) or not yet run."""
    state = "not finished" if started else "not started"
    return Blame(f"run deadline: {state} within the run's {run_timeout_s:g} s (run_timeout_s)")


def exited() -> Blame:
    """The check's process ended before it reported: it exited or was killed."""
    return Blame(
        "the check ended its worker process (os._exit, a signal or a crash) before it "
        "reported; a fresh worker ran the checks after it"
    )


def not_run(why: str) -> Blame:
    """The check did not run, for ``why`` ("the run was stopped: ...")."""
    return Blame(f"not run: {why}")
