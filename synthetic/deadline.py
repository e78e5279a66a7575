"""The run's deadline: ``run_timeout_s``, or one computed from the checks' own limits.

The default never cuts a run that each check's own limit allows: every
check may use its whole limit plus the stop's grace and a fresh worker's
start, spread over the workers (the longest one counted again, as one
worker may end up with it last), after a start-up allowance to bring up the
workers and collect::

    STARTUP_S + sum(limit + PER_CHECK_S) / workers + max(limit + PER_CHECK_S)

so 27 checks of 60 s on one worker get 30 + 27 * 63 + 63 s (about 30 min):
a bound for a run gone wrong, not a schedule. Set ``run_timeout_s`` for a
tighter one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

GRACE_S = 2.0  # after its limit, for a check to stop when told before it is stopped
STARTUP_S = 30.0  # workers started and checks collected
RESTART_S = 1.0  # a fresh worker, after one was stopped
PER_CHECK_S = GRACE_S + RESTART_S
CLOCK_KEY = pytest.StashKey["RunClock"]()  # where the checks run in the controller's process


def default_run_timeout(limits: Sequence[float], workers: int) -> float:
    """The default ``run_timeout_s`` for checks of these time limits on ``workers``."""
    if not limits:
        return STARTUP_S
    budgets = [limit + PER_CHECK_S for limit in limits]
    return STARTUP_S + sum(budgets) / max(1, workers) + max(budgets)


class RunClock:
    """When the run started and when its time runs out (``time.monotonic()``, which
    is the same clock in every process of one machine)."""

    def __init__(
        self, run_timeout_s: float | None, *, default: bool, started: float | None = None
    ) -> None:
        """``default``: without ``run_timeout_s``, compute one (until the checks are
        known, `STARTUP_S` bounds their collection); else there is no deadline."""
        self.started = time.monotonic() if started is None else started
        self.configured = run_timeout_s
        self.default = default
        self.timeout_s = run_timeout_s if run_timeout_s is not None or not default else STARTUP_S

    def plan(self, limits: Sequence[float], workers: int) -> None:
        """Once the checks are known: the default deadline, unless one is configured."""
        if self.configured is None and self.default:
            self.timeout_s = default_run_timeout(limits, workers)

    @property
    def deadline(self) -> float | None:
        return None if self.timeout_s is None else self.started + self.timeout_s

    def left(self) -> float | None:
        """Seconds until the deadline (negative once passed); None when there is none."""
        deadline = self.deadline
        return None if deadline is None else deadline - time.monotonic()

    def passed(self) -> bool:
        left = self.left()
        return left is not None and left <= 0
