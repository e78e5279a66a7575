"""The run's scratch directory: what the processes running checks tell the watchdog.

A worker stuck in a check cannot speak xdist's protocol, so what the
controller's watchdog (`synthetic.watchdog`) must know about it is kept in
files here, rewritten as it changes:

- ``worker-<id>.status`` (a `Status`, see `Board`): the process's pid, the
  check it runs, when that check's hard deadline passes and what it is
  waiting on (`synthetic.waits`);
- ``catalogue.json``: every check collected, as a `Placeholder`: what the
  controller needs to give it a result when the check cannot (its worker was
  stopped or died, or the run's time ran out before it ran).

The catalogue is replaced whole (a temp file renamed over); nothing is
synced: the directory lives as long as the run, in the system's temp directory.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import struct
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
from synthetic.run_state import unreachable_target

CATALOGUE = "catalogue.json"
STATUS_SUFFIX = ".status"
RECORD_BYTES = 4096  # one status: a node id and what it waits on fit many times over
_SEQUENCE = struct.Struct("<Q")
_HEADER = struct.Struct("<QI")  # the sequence number, then the status's length in bytes


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
    """This process's status, rewritten at each change (waits included).

    A change costs microseconds, not a file write, since it happens around
    every call to the target (a latency check measures those): the status
    lives in a memory-mapped file of `RECORD_BYTES`, behind a sequence number
    that is odd while it is being rewritten, so a reader (`statuses`) never
    takes half of one status for another.
    """

    def __init__(self, run_dir: Path, worker: str) -> None:
        self.path = run_dir / f"worker-{worker}{STATUS_SUFFIX}"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, RECORD_BYTES)
            self._map = mmap.mmap(fd, RECORD_BYTES)
        finally:
            os.close(fd)
        self._status = Status(worker, os.getpid())
        self._sequence = 0
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
            self._status = dataclasses.replace(self._status, deadline=None)
        self._write()

    def finish(self) -> None:
        with self._lock:
            self._status = Status(self._status.worker, self._status.pid)
        self._write()

    def close(self) -> None:
        waits.listen(None)
        with self._lock:
            self._map.close()
        self.path.unlink(missing_ok=True)

    def _write(self) -> None:
        with self._lock:
            if self._map.closed:
                return
            status = self._status
            waiting = waits.current() if status.check is not None else None
            document = {
                "worker": status.worker,
                "pid": status.pid,
                "check": status.check,
                "deadline": status.deadline,
                "limit_s": status.limit_s,
                "waiting": [waiting.kind, waiting.what, waiting.check] if waiting else None,
            }
            payload = json.dumps(document).encode("utf-8")[: RECORD_BYTES - _HEADER.size]
            self._sequence += 1  # odd: being rewritten
            _SEQUENCE.pack_into(self._map, 0, self._sequence)
            self._map[_HEADER.size : _HEADER.size + len(payload)] = payload
            self._sequence += 1
            _HEADER.pack_into(self._map, 0, self._sequence, len(payload))


def statuses(run_dir: Path) -> list[Status]:
    """Every process's last status (one being rewritten at every look is left out)."""
    found = []
    for path in sorted(run_dir.glob(f"worker-*{STATUS_SUFFIX}")):
        status = _read_status(path)
        if status is not None:
            found.append(status)
    return found


def _read_status(path: Path) -> Status | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        for _ in range(3):
            record = os.pread(fd, RECORD_BYTES, 0)
            if len(record) < _HEADER.size:
                return None
            sequence, length = _HEADER.unpack_from(record)
            again = _SEQUENCE.unpack_from(os.pread(fd, _SEQUENCE.size, 0))[0]
            if sequence % 2 == 0 and again == sequence:
                return _status(record[_HEADER.size : _HEADER.size + length])
        return None
    finally:
        os.close(fd)


def _status(payload: bytes) -> Status | None:
    try:
        data = json.loads(payload)
        waiting = data.pop("waiting", None)
        return Status(**data, waiting=waits.Wait(*waiting) if waiting else None)
    except (ValueError, TypeError):
        return None


def forget(run_dir: Path, worker: str) -> None:
    """Drop a worker's status (it is gone: its pid must never be signalled again)."""
    (run_dir / f"worker-{worker}{STATUS_SUFFIX}").unlink(missing_ok=True)


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
