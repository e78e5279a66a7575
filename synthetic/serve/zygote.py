"""The zygote: a warm, single-threaded process that forks one child per round and watches it.

Started once by `synthetic serve` (``python -m synthetic.serve.zygote``; a
fresh interpreter, so it inherits no thread of the web server). It pays
once for what every round would otherwise pay: the interpreter, pytest and
its plugins, the config, collecting the catalogue (test modules imported
with their assertions rewritten), the HTTP and database client libraries,
the TLS context. Then, for each round it is asked for, it forks a child that
runs the round's pytest session in-process (`synthetic.serve.child`), and
is that child's watchdog (`synthetic.serve.watch`): the child is killed at
the round's deadline, or when a check does not stop and the child's own
guard cannot act; what the child had streamed is kept. Each round starts
from the zygote's clean state: nothing a check does survives its round.

It speaks JSON lines: commands on stdin (``{"round": n}``), answers on the
file descriptor that was its stdout (its fd 1 itself goes to /dev/null).
Its stdin closing (the runner is gone) ends it, and the round under way.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import os
import select
import shutil
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synthetic.outcome import one_line
from synthetic.redact import Masker
from synthetic.run_state import run_state
from synthetic.rundir import Placeholder
from synthetic.serve.child import run_round
from synthetic.serve.watch import RoundWatch

TICK_S = 0.05
# Imported once here rather than by every round: what the catalogue's fixtures
# import when first used. (Not polars: its thread pool does not survive a fork.)
WARM_MODULES = (
    "httpx",
    "httpcore",
    "h11",
    "tenacity",
    "psycopg",
    "redis",
    "orjson",
    "prometheus_client.parser",
    "synthetic.fixtures",
    "synthetic.measure.http",
    "synthetic.measure.health",
    "synthetic.measure.bullmq",
    "synthetic.measure.prometheus",
    "synthetic.alerts.pipeline",
    "synthetic.exporters",
)


@dataclass(frozen=True)
class Warm:
    """What the zygote learnt collecting the catalogue once."""

    environment: str
    target: str | None
    masker: Masker
    placeholders: Mapping[str, Placeholder]


class _Collect:
    """The warm-up session's plugin: the catalogue as placeholders, and the config."""

    def __init__(self) -> None:
        self.warm: Warm | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        from synthetic import runner

        state = run_state(session.config)
        env = state.config.environment
        self.warm = Warm(
            environment=env.name,
            target=state.config.masker.text(env.base_url) if env.base_url else None,
            masker=state.config.masker,
            placeholders=runner.placeholders(session.items, state),
        )


def warm_up(pytest_args: list[str]) -> tuple[Warm | None, str]:
    """Collect the catalogue in this process; (what it found, pytest's last line)."""
    collect = _Collect()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = pytest.main([*pytest_args, "--collect-only", "-q"], plugins=[collect])
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    from synthetic.measure.http import tls_context

    tls_context()
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) or not collect.warm:
        return None, _first_error(lines) or f"pytest exited with {int(code)}"
    return collect.warm, ""


def _first_error(lines: list[str]) -> str:
    """The first line of pytest's ERRORS section that says something (its E-line if
    it has one), else its last line."""
    inside = False
    for line in lines:
        if line.startswith("=") and "ERRORS" in line:
            inside = True
        elif inside and line.startswith("="):
            break
        elif inside and not line.startswith("_"):
            return line.removeprefix("E").strip()
    return lines[-1] if lines else ""


class _Lines:
    """JSON lines from a file descriptor, read without blocking once select says so."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def read(self) -> Iterator[dict[str, Any]]:
        data = os.read(self.fd, 1 << 16)
        if not data:
            self.closed = True
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event


def play(pytest_args: list[str], warm: Warm, *, log: Path, after_verdict_s: float,
         commands: _Lines) -> dict[str, Any]:  # fmt: skip
    """One round: fork, watch, assemble; what the runner is told."""
    read_fd, write_fd = os.pipe()
    watch = RoundWatch(
        environment=warm.environment,
        target=warm.target,
        masker=warm.masker,
        fallback=warm.placeholders,
        after_verdict_s=after_verdict_s,
    )
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the round's process; it ends with os._exit
        os.close(read_fd)
        os.setpgid(0, 0)  # its own group: whatever it leaves running goes with it
        run_round(pytest_args, write_fd, log)
    os.close(write_fd)
    events = _Lines(read_fd)
    status = usage = None
    stop_asked = False
    try:
        while status is None:
            ready, _, _ = select.select([read_fd, commands.fd], [], [], TICK_S)
            if read_fd in ready:
                for event in events.read():
                    watch.event(event)
            if commands.fd in ready and not stop_asked:
                for command in commands.read():
                    stop_asked = stop_asked or bool(command.get("abort"))
                stop_asked = stop_asked or commands.closed
                if stop_asked and watch.killed is None:
                    watch.killed = "the runner was stopped"
                    _kill(pid)
            if watch.killed is None:
                why = watch.overdue(time.monotonic())
                if why is not None:
                    watch.killed = why
                    _kill(pid)
            waited, code, rusage = os.wait4(pid, os.WNOHANG)
            if waited == pid:
                status, usage = code, rusage
        while not events.closed and select.select([read_fd], [], [], 0)[0]:
            for event in events.read():
                watch.event(event)
    finally:
        os.close(read_fd)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # anything the round left running
        if status is None:
            with contextlib.suppress(ChildProcessError):
                _, status, usage = os.wait4(pid, 0)
        if watch.run_dir is not None:
            shutil.rmtree(watch.run_dir, ignore_errors=True)  # left by a killed round
    ended = _ended(os.waitstatus_to_exitcode(status or 0))
    if watch.verdict is None and watch.killed is None:
        # A config or collection error: pytest's own line says what.
        with contextlib.suppress(OSError):
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            watch.problem = _first_error([line for line in lines if line.strip()]) or None
    run = watch.assemble(ended)
    notes = list(watch.notes)
    if watch.killed and watch.verdict is not None:
        notes.append(f"the round's process was stopped: {watch.killed}")
    return {
        "run": {**run.to_json(), "interrupted": run.interrupted},
        "notes": [warm.masker.text(note) for note in notes],
        "results_path": watch.results_path,
        "killed": watch.killed,
        "cpu_s": (usage.ru_utime + usage.ru_stime) if usage is not None else None,
        "stop": stop_asked,
    }


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _ended(code: int) -> str:
    if code >= 0:
        return f"exit {code}"
    with contextlib.suppress(ValueError):
        return f"signal {-code} ({signal.Signals(-code).name})"
    return f"signal {-code}"


def main() -> None:
    """The zygote's life: warm up, then rounds until stdin closes."""
    answers = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides when rounds stop

    def answer(document: dict[str, Any]) -> None:
        data = (json.dumps(document) + "\n").encode()
        while data:
            data = data[os.write(answers, data) :]

    commands = _Lines(0)
    start: dict[str, Any] = {}
    while not start and not commands.closed:
        select.select([0], [], [])
        for command in commands.read():
            start = command
            break
    if not start:
        os._exit(0)
    pytest_args = [str(a) for a in start["args"]]
    log = Path(start["log"])
    began = time.process_time()
    try:
        warm, error = warm_up(pytest_args)
    except Exception as exc:
        warm, error = None, one_line(f"{type(exc).__name__}: {exc}")
    answer({"ready": warm is not None, "error": error, "cpu_s": time.process_time() - began})
    if warm is None:
        os._exit(0)
    # Objects made so far are never collected: a round's gc passes skip them,
    # and its pages stay shared with this process instead of being copied.
    gc.freeze()
    while not commands.closed:
        select.select([0], [], [])
        for command in list(commands.read()):
            if "round" not in command:
                continue
            outcome = play(
                pytest_args,
                warm,
                log=log,
                after_verdict_s=float(start.get("after_verdict_s", 60.0)),
                commands=commands,
            )
            answer({"round": command["round"], **outcome})
            if outcome["stop"]:
                os._exit(0)
    os._exit(0)


if __name__ == "__main__":  # pragma: no cover - the runner's child
    main()
