"""Stopping a check at its time limit: the side of the watchdog in the process that runs it.

For checks this replaces pytest-timeout's timer, through pytest-timeout's
own hook (ordinary tests keep pytest-timeout's): the same SIGALRM at the
check's limit (its ``timeout`` marker, ``--timeout``, else
``check_timeout_s``), raising `CheckStopped` with what the check was
waiting on at that instant (`synthetic.waits`), so a timeout says whose
fault it was. Without workers the run's deadline stops the check too, when
it comes first.

A check may not stop when told: a bare ``except:`` swallows the exception,
code in C never returns to Python. So the process's status board
(`synthetic.rundir.Board`) says when the check's hard deadline passes, its
limit plus `GRACE_S`, and the controller's watchdog (`synthetic.watchdog`)
stops it from outside then.
"""

from __future__ import annotations

import signal
import threading
import time
import types
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from synthetic import waits
from synthetic.deadline import CLOCK_KEY, GRACE_S
from synthetic.errors import CheckStopped
from synthetic.run_state import RUN_KEY, SPEC_KEY
from synthetic.rundir import Board

BOARD_KEY = pytest.StashKey[Board]()
_ARMED_KEY = pytest.StashKey["_Armed"]()


class RunLimit(Protocol):
    """What the stop needs of the run's clock (`synthetic.deadline.RunClock`)."""

    timeout_s: float | None

    def left(self) -> float | None: ...


@dataclass
class _Armed:
    active: bool = True
    timer: bool = False
    previous: Any = None


def set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """pytest-timeout's ``pytest_timeout_set_timer`` for a check; None for any other test."""
    state = item.config.stash.get(RUN_KEY, None)
    if state is None or SPEC_KEY not in item.stash:
        return None
    arm(
        item,
        float(settings.timeout),
        board=status_board(item.config),
        run=item.config.stash.get(CLOCK_KEY, None),
        detect_debugger=not settings.disable_debugger_detection,
    )
    return True


def cancel_timer(item: pytest.Item) -> bool | None:
    """pytest-timeout's ``pytest_timeout_cancel_timer`` for a check."""
    return True if disarm(item, board=item.config.stash.get(BOARD_KEY, None)) else None


def status_board(config: pytest.Config) -> Board | None:
    """This process's status board, made when its first check starts (so a
    session without checks writes none)."""
    found = config.stash.get(BOARD_KEY, None)
    state = config.stash.get(RUN_KEY, None)
    if found is None and state is not None and state.run_dir is not None:
        workerinput = getattr(config, "workerinput", None)
        found = Board(state.run_dir, workerinput["workerid"] if workerinput else "main")
        config.stash[BOARD_KEY] = found
    return found


def pause(config: pytest.Config) -> None:
    """A debugger took over the running check: no hard deadline for it."""
    found = config.stash.get(BOARD_KEY, None)
    if found is not None:
        found.pause()


def close(config: pytest.Config) -> None:
    found = config.stash.get(BOARD_KEY, None)
    if found is not None:
        found.close()
        del config.stash[BOARD_KEY]


def arm(
    item: pytest.Item,
    limit_s: float,
    *,
    board: Board | None,
    run: RunLimit | None = None,
    detect_debugger: bool = True,
) -> None:
    """Stop ``item`` after ``limit_s`` (or when ``run``'s time runs out, if sooner)."""
    left = run.left() if run is not None else None
    run_deadline = left is not None and left < limit_s
    after = left if run_deadline and left is not None else limit_s
    armed = _Armed()
    waits.running(item.nodeid)

    def stop(signum: int, frame: types.FrameType | None) -> None:
        if not armed.active or (detect_debugger and _debugging()):
            return
        waiting = waits.current()
        if run_deadline and run is not None and run.timeout_s is not None:
            item.session.shouldfail = f"run deadline ({run.timeout_s:g} s, run_timeout_s)"
            raise CheckStopped(run.timeout_s, waiting=waiting, run_deadline=True)
        raise CheckStopped(limit_s, waiting=waiting, run_deadline=False)

    if after > 0 and threading.current_thread() is threading.main_thread():
        armed.previous = signal.signal(signal.SIGALRM, stop)
        armed.timer = True
        signal.setitimer(signal.ITIMER_REAL, after)
    if board is not None:
        hard = None if detect_debugger and _debugging() else time.monotonic() + after + GRACE_S
        board.start(item.nodeid, limit_s=limit_s, deadline=hard)
    item.stash[_ARMED_KEY] = armed


def disarm(item: pytest.Item, *, board: Board | None) -> bool:
    """Undo `arm` for ``item``; False when it was not armed."""
    armed = item.stash.get(_ARMED_KEY, None)
    if armed is None:
        return False
    del item.stash[_ARMED_KEY]
    armed.active = False  # a signal already on its way finds nothing to stop
    if armed.timer:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, armed.previous or signal.SIG_DFL)
    if board is not None:
        board.finish()
    waits.running(None)
    return True


def _debugging() -> bool:
    """A debugger holds the check (pytest-timeout's test): its time is not the check's."""
    from pytest_timeout import is_debugging

    return bool(is_debugging())
