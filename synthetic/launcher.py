"""The command's side of a run's verdict: the pytest session runs in a child process.

``synthetic run``, ``gate`` and ``demo`` fork; the child runs the pytest
session and hands the verdict back in a file as soon as the controller has
decided it (`pytest_synthetic_run_finished`, before alerts and exporters);
the parent decides the exit status from that file alone. So a run that
leaves no verdict (a check or a hook ended the process, it was killed) is
UNKNOWN, never OK, whatever status its process ended with; and once the
verdict is handed back, nothing the process does after it changes it. The
child ends with ``os._exit``: a thread it leaked does not hold the command.

The child stays in the command's process group: a terminal's Ctrl-C, or
``watch`` stopping a round, reaches it as before. The parent ignores SIGINT
(the child got it too) and passes SIGTERM on to the child as SIGINT, so a
run told to stop still says what it found.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import signal
import sys
import tempfile
import traceback
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synthetic import workers
from synthetic.errors import ConfigError
from synthetic.outcome import one_line
from synthetic.results import RunResult
from synthetic.run_state import option, run_state

VERDICT = "verdict.json"  # written by the controller's side, once the run is decided
END = "end.json"  # written when pytest.main returned


@dataclass(frozen=True)
class Session:
    """What the command learns of one pytest session it ran."""

    run: RunResult | None  # None: no verdict
    ended: str  # how its process ended: "exit 0", "signal 9 (SIGKILL)"
    pytest_code: int | None = None  # pytest.main's status, when it got that far
    fail_on: str = "critical"
    results_path: Path | None = None
    rootdir: Path | None = None  # what the check ids are relative to
    last_line: str = ""  # quiet: the last line pytest printed


def run(pytest_args: list[str], *, quiet: bool = False) -> Session:
    """Run a pytest session with these arguments in a child process (``quiet``:
    its output kept, not shown); what it decided."""
    with tempfile.TemporaryDirectory(prefix="synthetic-verdict-") as tmp:
        handoff = Path(tmp)
        sys.stdout.flush()
        sys.stderr.flush()
        if not gc.isenabled():
            gc.freeze()  # the command's start (`synthetic.__main__`): shared, never collected
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork() with threads running: the demo's sandbox
            # serves from one, and the child never touches it (or a lock of it).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; coverage cannot follow os._exit
            _child(pytest_args, handoff, quiet=quiet)
        gc.enable()  # here, the start is over (the demo's sandbox serves on meanwhile)
        with _relaying(pid):
            _, status = os.waitpid(pid, 0)
        return _read(handoff, _ended(os.waitstatus_to_exitcode(status)))


def _child(pytest_args: list[str], handoff: Path, *, quiet: bool) -> None:
    """Run pytest, write what it returned, and leave without waiting for any thread."""
    end: dict[str, Any] = {}
    workers.FORK_FROM_HERE = True  # this process is ours: its workers can be its forks
    try:
        capture = _Capture(handoff)
        if quiet:
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                end["pytest_code"] = int(pytest.main(pytest_args, plugins=[capture]))
            lines = [line for line in out.getvalue().splitlines() if line.strip()]
            end["last_line"] = lines[-1] if lines else ""
        else:
            end["pytest_code"] = int(pytest.main(pytest_args, plugins=[capture]))
        _write(handoff / END, end)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


class _Capture:
    """In the child: hands the run's verdict, and the options it ran with, to the parent."""

    def __init__(self, handoff: Path) -> None:
        self.handoff = handoff
        self.fail_on = "critical"
        self.rootdir: Path | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # At session start every plugin is configured, ours included.
        config = session.config
        self.rootdir = config.rootpath
        # A stale results.json must not outlive a run that fails early, even
        # on a config error (so no run state): the option alone says where.
        with contextlib.suppress(ConfigError):
            results_dir = config.invocation_params.dir / str(
                option(config, "synthetic_results_dir")
            )
            (results_dir / "results.json").unlink(missing_ok=True)
        with contextlib.suppress(pytest.UsageError):
            self.fail_on = run_state(config).fail_on

    def pytest_synthetic_run_finished(self, run: RunResult, config: pytest.Config) -> None:
        path = run_state(config).results_path
        verdict = {
            "run": {**run.to_json(), "interrupted": run.interrupted},
            "fail_on": self.fail_on,
            "results_path": str(path) if path else None,
            "rootdir": str(self.rootdir) if self.rootdir else None,
        }
        _write(self.handoff / VERDICT, verdict)


def _read(handoff: Path, ended: str) -> Session:
    verdict = _load(handoff / VERDICT)
    end = _load(handoff / END)
    code = end.get("pytest_code")
    last_line = str(end.get("last_line", ""))
    if not verdict:
        return Session(None, ended, code if isinstance(code, int) else None, last_line=last_line)
    results_path, rootdir = verdict.get("results_path"), verdict.get("rootdir")
    return Session(
        RunResult.from_json(verdict["run"]),
        ended,
        code if isinstance(code, int) else None,
        fail_on=str(verdict.get("fail_on", "critical")),
        results_path=Path(results_path) if results_path else None,
        rootdir=Path(rootdir) if rootdir else None,
        last_line=last_line,
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _write(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document), encoding="utf-8")
    tmp.replace(path)


def _ended(code: int) -> str:
    if code >= 0:
        return f"exit {code}"
    with contextlib.suppress(ValueError):
        return f"signal {-code} ({signal.Signals(-code).name})"
    return f"signal {-code}"


@contextlib.contextmanager
def _relaying(child: int) -> Iterator[None]:
    """While waiting: SIGINT is the child's (it got it too); SIGTERM becomes its SIGINT."""

    def ignore(signum: int, frame: types.FrameType | None) -> None:
        pass

    def relay(signum: int, frame: types.FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGINT)

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, ignore),
        signal.SIGTERM: signal.signal(signal.SIGTERM, relay),
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def no_result_reason(session: Session) -> str:
    """Why a session gave no verdict, in a few words."""
    if session.pytest_code is None:
        return f"the run's process ended ({session.ended}) before it decided"
    why = {
        int(pytest.ExitCode.NO_TESTS_COLLECTED): "no checks were collected",
        int(pytest.ExitCode.USAGE_ERROR): "usage or configuration error",
        int(pytest.ExitCode.INTERRUPTED): "interrupted",
    }.get(session.pytest_code, f"pytest exited with {session.pytest_code}")
    return one_line(why)
