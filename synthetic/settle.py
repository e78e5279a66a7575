"""Settling a deploy gate: right after a deploy a service may still be warming up.

`settle` re-runs only the checks that fail the gate, every ``every_s``, until
they pass or ``settle_s`` is spent. A check that passed stays passed; the
decision is taken on each check's last result.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from synthetic.results import CheckResult, RunResult
from synthetic.units import format_duration

# Re-runs the checks with these node ids; None when the run gave no result.
Rerun = Callable[[Sequence[str]], RunResult | None]
SHOWN = 5  # checks named in a waiting line


@dataclass(frozen=True)
class Settled:
    run: RunResult  # the first run, each re-run check replaced by its last result
    settled: bool
    waited_s: float


def merge(base: RunResult, latest: RunResult) -> RunResult:
    """``base`` with the checks ``latest`` ran replaced; its errors are the latest round's
    (only a complete run is settled, so ``base`` had none)."""
    checks = {check.id: check for check in base.checks}
    checks.update({check.id: check for check in latest.checks})
    return dataclasses.replace(
        base,
        finished_at=latest.finished_at,
        checks=tuple(checks.values()),
        errors=latest.errors,
        interrupted=latest.interrupted,
    )


def settle(
    first: RunResult,
    fail_on: str,
    rerun: Rerun,
    *,
    settle_s: float,
    every_s: float,
    say: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Settled:
    """Re-run the failing checks of ``first`` until the gate passes or ``settle_s`` is spent.

    Attempts start ``every_s`` apart; the last one starts no later than the
    settle time's end. An interrupted round ends the wait.
    """
    run = first
    began = last_start = clock()
    deadline = began + settle_s
    while run.fails(fail_on):
        waiting = run.failing(fail_on)
        start_at = min(last_start + every_s, deadline)
        if not waiting or run.interrupted or start_at <= last_start:
            return Settled(run, settled=False, waited_s=clock() - began)
        say(
            f"waiting for {len(waiting)} check(s) to settle ({describe(waiting)}); "
            f"{format_duration(deadline - clock())} left"
        )
        sleep(max(0.0, start_at - clock()))
        last_start = clock()
        latest = rerun([check.id for check in waiting])
        if latest is not None:
            run = merge(run, latest)
    return Settled(run, settled=True, waited_s=clock() - began)


def describe(checks: Sequence[CheckResult]) -> str:
    named = [f"{check.key} {check.severity.value.upper()}" for check in checks[:SHOWN]]
    if len(checks) > SHOWN:
        named.append(f"{len(checks) - SHOWN} more")
    return ", ".join(named)
