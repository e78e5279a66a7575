"""The runner's side of the zygote: start it, ask for rounds, read their outcomes.

The zygote is a fresh interpreter (not a fork of this process, which serves
the web from threads): `synthetic.serve.zygote`. If it dies, the round it
was running is UNKNOWN and the next round starts a new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from synthetic.results import RunResult
from synthetic.run_state import now_iso
from synthetic.serve.watch import new_round_id

READY_TIMEOUT_S = 120.0  # importing and collecting the catalogue
STOP_TIMEOUT_S = 5.0


class ZygoteError(Exception):
    """The zygote could not start (the message is pytest's or the zygote's last line)."""


@dataclass(frozen=True)
class Round:
    """One round's outcome, as the runner uses it."""

    number: int
    run: RunResult
    started: float  # time.monotonic()
    finished: float
    notes: tuple[str, ...] = ()
    killed: str | None = None
    cpu_s: float | None = None  # of the round's process
    results_path: str | None = None

    @property
    def duration_s(self) -> float:
        return self.finished - self.started


@dataclass
class RoundRunner:
    pytest_args: list[str]
    log: Path  # the last round's pytest output
    after_verdict_s: float
    environment: str
    process: subprocess.Popen[bytes] | None = None
    startup_cpu_s: float | None = None
    _buffer: bytes = field(default=b"", repr=False)

    def start(self) -> None:
        """Start the zygote and wait until it has collected the catalogue."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synthetic.serve.zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            process_group=0,  # a terminal's Ctrl-C is the runner's to act on, not the rounds'
        )
        self._send(
            {
                "args": self.pytest_args,
                "log": str(self.log),
                "after_verdict_s": self.after_verdict_s,
            }
        )
        ready = self._answer(READY_TIMEOUT_S)
        if not ready or not ready.get("ready"):
            error = (ready or {}).get("error") or "the round process did not start"
            self.close()
            raise ZygoteError(str(error))
        self.startup_cpu_s = float(ready.get("cpu_s") or 0.0)

    def round(self, number: int) -> Round:
        """Run one round (blocking until it ends, within its own deadline)."""
        started = time.monotonic()
        started_at = now_iso()
        try:
            if self.process is None or self.process.poll() is not None:
                self.start()
            self._send({"round": number})
            answer = self._answer(None)
        except (OSError, ZygoteError) as exc:
            answer, why = None, str(exc)
        else:
            why = "the round process ended without an answer"
        if not answer:
            self.close()
            return Round(
                number, _lost(self.environment, started_at, why), started, time.monotonic()
            )
        data = dict(answer["run"])
        return Round(
            number=number,
            run=RunResult.from_json(data),
            started=started,
            finished=time.monotonic(),
            notes=tuple(answer.get("notes") or ()),
            killed=answer.get("killed"),
            cpu_s=answer.get("cpu_s"),
            results_path=answer.get("results_path"),
        )

    def abort(self) -> None:
        """Stop the round under way now (its result says so)."""
        with contextlib.suppress(OSError, ValueError):
            self._send({"abort": True})

    def close(self) -> None:
        """End the zygote (and with it any round): stdin closed, killed if it lingers."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError, ValueError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait()
        for stream in (process.stdout,):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._buffer = b""

    def _send(self, document: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(document) + "\n").encode())
        self.process.stdin.flush()

    def _answer(self, timeout_s: float | None) -> dict[str, Any] | None:
        assert self.process is not None
        assert self.process.stdout is not None
        stream: IO[bytes] = self.process.stdout
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        fd = stream.fileno()
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            data = os.read(fd, 1 << 16)
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            answer = json.loads(line)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None


def _lost(environment: str, started_at: str, why: str) -> RunResult:
    """A round whose process gave nothing back: no check is vouched for."""
    return RunResult(
        run_id=new_round_id(),
        environment=environment,
        target=None,
        started_at=started_at,
        finished_at=now_iso(),
        checks=(),
        errors=(f"the round was lost: {why}",),
    )
