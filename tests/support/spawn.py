"""Several OS processes started at the same moment, for tests of concurrent runners."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.synchronize import Barrier
from typing import Any

JOIN_TIMEOUT_S = 60.0


def run_at_once(
    count: int, target: Callable[..., None], args: Callable[[int, Barrier], tuple[Any, ...]]
) -> list[int | None]:
    """Run ``target(*args(n, barrier))`` in ``count`` spawned processes sharing one
    barrier (each waits on it, so they start their work together); the exit codes.

    A process still running after `JOIN_TIMEOUT_S` is killed (its code is then
    not 0), so a hung runner fails the test instead of hanging it.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(count)
    processes = [context.Process(target=target, args=args(n, barrier)) for n in range(count)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=JOIN_TIMEOUT_S)
    codes = [process.exitcode for process in processes]
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return codes
