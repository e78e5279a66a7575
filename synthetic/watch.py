"""``synthetic watch``: the checks in rounds, each a fresh ``synthetic run`` process.

A round is a child process, so nothing leaks from one pytest session into the
next and a crash costs one round, not the watch; what rounds share (samples
for rate checks) goes through the state store, as between cron runs. Rounds
never overlap: the next starts ``every_s`` after the previous one started, or
at once when that one took longer. SIGINT or SIGTERM stops the watch: the
round under way is interrupted as Ctrl-C would (SIGINT to its process group),
killed if it has not ended within `GRACE_S`, and not counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from synthetic.results import Severity

GRACE_S = 5.0
POLL_S = 0.1
REPORT_OPTION = "--report-results-path"  # hidden `run` option: where it says it wrote results
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stop:
    """Set by SIGINT or SIGTERM; the loop looks at it between short waits."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum: int, frame: types.FrameType | None) -> None:
        self.signum = signum


def watch(
    run_args: Sequence[str],
    *,
    every_s: float,
    rounds: int | None,
    say: Callable[[str], None],
) -> int:
    """``synthetic run RUN_ARGS`` in rounds; the exit code of the last round that finished.

    0 when no round finished. ``rounds`` None: until stopped.
    """
    stop = _Stop()
    last = 0
    with stop_signals(stop):
        number = 0
        while rounds is None or number < rounds:
            number += 1
            started = time.monotonic()
            code, document = _round(run_args, stop)
            elapsed = time.monotonic() - started
            if code is None:
                say(f"round {number}: stopped after {elapsed:.1f}s (not counted)")
                break
            say(summary(number, code, elapsed, document))
            last = code
            if rounds is not None and number >= rounds:
                break
            while not stop.signum and time.monotonic() < started + every_s:
                time.sleep(min(POLL_S, max(0.0, started + every_s - time.monotonic())))
            if stop.signum:
                break
    if stop.signum:
        say(f"stopped by {signal.Signals(stop.signum).name}")
    return last


@contextlib.contextmanager
def stop_signals(handler: Callable[[int, types.FrameType | None], None]) -> Iterator[None]:
    """``handler`` for SIGINT and SIGTERM inside, the previous handlers restored after
    (`watch` and `synthetic serve` stop the same way)."""
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)


def _round(run_args: Sequence[str], stop: _Stop) -> tuple[int | None, dict[str, object] | None]:
    """One child run: its exit code and results document; code None when stopped."""
    with tempfile.TemporaryDirectory(prefix="synthetic-watch-") as tmp:
        report = Path(tmp) / "results-path"
        # The option before the run's own arguments: after a "--" it would go to pytest.
        argv = [sys.executable, "-m", "synthetic", "run", f"{REPORT_OPTION}={report}"]
        argv += run_args
        # Its own process group: a terminal's Ctrl-C reaches the watch alone,
        # which passes it on once, and a kill takes the child's xdist workers too.
        child = subprocess.Popen(argv, process_group=0)
        while True:
            try:
                code = child.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                if stop.signum:
                    _end(child)
                    return None, None
        if code < 0:  # killed by a signal: no result
            code = Severity.UNKNOWN.nagios_code
        return code, _results(report)


def _end(child: subprocess.Popen[bytes]) -> None:
    """Interrupt the child as Ctrl-C would; kill it (and its group) if it lingers."""
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.killpg(child.pid, signal.SIGINT)
    try:
        child.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _results(report: Path) -> dict[str, object] | None:
    try:
        path = Path(report.read_text(encoding="utf-8").strip())
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def summary(number: int, code: int, elapsed_s: float, document: dict[str, object] | None) -> str:
    """``round 3: CRITICAL in 2.1s (2 critical, 25 ok)``."""
    counts = document.get("counts") if document else None
    if not document or not isinstance(counts, dict):
        return f"round {number}: no result (exit {code}) in {elapsed_s:.1f}s"
    order = [severity.value for severity in sorted(Severity, key=lambda s: -s.rank)]
    parts = [f"{counts[name]} {name}" for name in order if counts.get(name)] or ["no checks"]
    if not document.get("complete", True):
        parts.append("incomplete")
    worst = str(document.get("worst", "unknown")).upper()
    return f"round {number}: {worst} in {elapsed_s:.1f}s ({', '.join(parts)})"
