"""The run's scratch directory: what the processes running checks tell the watchdog.

A worker stuck in a check cannot speak xdist's protocol, so what the
controller's watchdog (`synthetic.watchdog`) must know about it is kept in
files here, rewritten as it changes:

- ``worker-<id>.json`` (a `Status`): the process's pid, the check it runs,
  when that check's hard deadline passes and what it is waiting on
  (`synthetic.waits`);
- ``catalogue.json``: every check collected, as a `Placeholder`: what the
  controller needs to give it a result when the check cannot (its worker was
  stopped or died, or the run's time ran out before it ran).

Files are replaced whole (a temp file renamed over), never synced: the
directory lives as long as the run, in the system's temp directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synthetic import blame, waits
from synthetic.outcome import one_line
from synthetic.redact import Masker
from synthetic.results import CheckResult, Severity
from synthetic.session import unreachable_target

CATALOGUE = "catalogue.json"


@dataclass(frozen=True)
class Status:
    """One process running checks, as it last described itself."""

    worker: str  # "gw0", or "main" for a run without workers
    pid: int
    check: str | None = None  # node id of the check it runs
    deadline: float | None = None  # time.monotonic() past which the check must be stopped
    limit_s: float = 0.0  # the check's time limit
    waiting: waits.Wait | None = None


class Board:
    """This process's status file, rewritten at each change (waits included)."""

    def __init__(self, run_dir: Path, worker: str) -> None:
        self.path = run_dir / f"worker-{worker}.json"
        self._status = Status(worker, os.getpid())
        self._lock = threading.Lock()
        self._write()
        waits.listen(self._write)

    def start(self, check: str, *, limit_s: float, deadline: float | None) -> None:
        with self._lock:
            self._status = Status(self._status.worker, self._status.pid, check, deadline, limit_s)
        self._write()

    def pause(self) -> None:
        """No hard deadline for the running check (a debugger holds it)."""
        with self._lock:
            self._status = Status(**{**asdict(self._status), "deadline": None, "waiting": None})
        self._write()

    def finish(self) -> None:
        with self._lock:
            self._status = Status(self._status.worker, self._status.pid)
        self._write()

    def close(self) -> None:
        waits.listen(None)
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        with self._lock:
            status = self._status
            if status.check is not None:
                status = Status(**{**asdict(status), "waiting": waits.current()})
            _replace(self.path, asdict(status))


def statuses(run_dir: Path) -> list[Status]:
    """Every status file's last content (one unreadable is left out: it is being removed)."""
    found = []
    for path in sorted(run_dir.glob("worker-*.json")):
        with contextlib.suppress(OSError, ValueError, TypeError):
            data = json.loads(path.read_text(encoding="utf-8"))
            waiting = data.pop("waiting", None)
            found.append(Status(**data, waiting=waits.Wait(**waiting) if waiting else None))
    return found


def forget(run_dir: Path, worker: str) -> None:
    """Drop a worker's status (it is gone: its pid must never be signalled again)."""
    (run_dir / f"worker-{worker}.json").unlink(missing_ok=True)


@dataclass(frozen=True)
class Placeholder:
    """A check as the controller can report it without running it."""

    result: Mapping[str, Any]  # its CheckResult JSON, UNKNOWN with no reason yet
    name: str  # how its reasons begin (the metric's display name)
    unreachable: str  # the severity it gets when its target did not answer
    limit_s: float  # its time limit

    def outcome(self, told: blame.Blame, masker: Masker) -> CheckResult:
        """Its result when ``told`` says what happened to it."""
        data = dict(self.result)
        data["reason"] = masker.text(one_line(f"{self.name}: {told.reason}"))
        data["severity"] = self.unreachable if told.unreachable else Severity.UNKNOWN.value
        if told.unreachable:
            data["unreachable"] = unreachable_target(tuple(data.get("reaches", ())), told.via)
        return CheckResult.from_json(data)


def write_catalogue(run_dir: Path, placeholders: Mapping[str, Placeholder]) -> None:
    _replace(run_dir / CATALOGUE, {node: asdict(p) for node, p in placeholders.items()})


def read_catalogue(run_dir: Path) -> dict[str, Placeholder]:
    """The checks collected (empty before a process has collected them)."""
    try:
        data = json.loads((run_dir / CATALOGUE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {node: Placeholder(**fields) for node, fields in data.items()}


def _replace(path: Path, document: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
