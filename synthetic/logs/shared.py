"""The log analysis runs once per run, whichever process asks first.

With pytest-xdist the log checks land on several workers, each with its own
session fixtures. The first to ask takes an exclusive lock on
``<results-dir>/.logs/<run id>.lock``, analyses, and writes the result next
to it; the others wait on the lock (bounded) and read that result. The new
state travels the same way: the controller takes it from the run's file
when it saves the state, once, and removes the files. A serial run goes
through the same steps in one process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from synthetic.errors import MeasurementError
from synthetic.files import flock_within, write_json_atomic

DIRECTORY = ".logs"
POLL_S = 0.05


def _paths(results_dir: Path, run_id: str) -> tuple[Path, Path]:
    directory = results_dir / DIRECTORY
    return directory / f"{run_id}.lock", directory / f"{run_id}.json"


@contextlib.contextmanager
def _locked(lock: Path, timeout_s: float) -> Iterator[None]:
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        if not flock_within(fd, timeout_s, poll_s=POLL_S):
            raise MeasurementError(
                f"log analysis: another process held {lock} for more than {timeout_s:g}s"
            )
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def analysis_once(
    results_dir: Path, run_id: str, compute: Callable[[], dict[str, Any]], *, timeout_s: float
) -> dict[str, Any]:
    """This run's analysis: computed here if no process did yet, else read.

    A failure to analyse is stored too, so every check of the run reports
    the same reason instead of each process trying again.
    """
    lock, result = _paths(results_dir, run_id)
    try:
        with _locked(lock, timeout_s):
            return _read_or_compute(result, compute)
    except MeasurementError:
        # The wait ran out while another process analysed: its result may
        # have landed since (the lock is only taken to compute it once).
        if result.exists():
            found: dict[str, Any] = orjson.loads(result.read_bytes())
            return found
        raise


def _read_or_compute(result: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    if result.exists():
        document: dict[str, Any] = orjson.loads(result.read_bytes())
        return document
    try:
        document = compute()
    except Exception as exc:  # a bug or an OS error: UNKNOWN for every log check
        document = {"error": f"log analysis failed: {type(exc).__name__}: {exc}"}
    document["computed_by"] = os.environ.get("PYTEST_XDIST_WORKER", "main")
    document["pid"] = os.getpid()
    write_json_atomic(result, document)
    return document


def take_state(results_dir: Path, run_id: str) -> dict[str, Any] | None:
    """The new log state of this run, if one was computed; the run's files are removed.

    Called by the controller, once, when it saves the state store.
    """
    lock, result = _paths(results_dir, run_id)
    try:
        document = orjson.loads(result.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        document = None
    for path in (result, lock):
        path.unlink(missing_ok=True)
    _sweep(results_dir / DIRECTORY)
    state = document.get("state") if isinstance(document, dict) else None
    return state if isinstance(state, dict) else None


STALE_S = 24 * 3600


def _sweep(directory: Path) -> None:
    """Remove what runs that died before saving their state left behind (a day old)."""
    cutoff = time.time() - STALE_S
    try:
        entries = list(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
