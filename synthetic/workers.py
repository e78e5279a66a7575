"""The xdist workers, as the controller's watchdog handles them.

What touches xdist's session is kept here: its plugin's event ``queue`` (to
leave its loop at the run's deadline, between two events, the way a
worker's own event would) and ``nodemanager.group`` (the execnet gateways,
to end every worker at once). Both are attributes of xdist's ``DSession``
plugin, the same in xdist 2 and 3, not a documented API: if they move, the
run still ends at its deadline, by the watchdog's last resort
(`synthetic.watchdog`).

In the `synthetic` command's run on Linux, workers are forks of the controller
(`fork_workers`), not fresh interpreters: a worker starts with pytest, the
plugins, the framework and the catalogue's conftest already imported, which
is most of what starting one costs (bench/light_start.py). The
worker is otherwise what execnet's ``popen`` gateway makes: its stdin and
stdout are the gateway's pipes, it reads the same bootstrap line and serves
the same protocol, and the controller waits for it and kills it (through a pidfd).
What the controller's process holds that a fresh interpreter would not is
reset in the child (`_fresh_worker`). execnet's ``create_io`` is the one
function replaced, and only for plain ``popen`` specs; anything else
(``--tx ssh=...``, ``popen//python=...``) is execnet's own.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import logging
import os
import signal
import sys
import threading
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# A node id no check has: the event that tells the controller's loop to stop.
STOP_NODEID = "synthetic::run-deadline"


class LeaveLoop(Exception):
    """Raised in the controller's main thread to leave xdist's loop at the run's deadline."""


def distributed(config: pytest.Config) -> bool:
    """Whether checks run on xdist workers, not in this process."""
    return _dsession(config) is not None


def count(config: pytest.Config) -> int:
    """How many workers run checks (1 without xdist: this process)."""
    numprocesses = config.getoption("numprocesses", None)
    return numprocesses if isinstance(numprocesses, int) and numprocesses > 0 else 1


def leave_loop(config: pytest.Config) -> bool:
    """Queue the event that makes the controller's main thread raise `LeaveLoop`
    (see `synthetic.controller`); False without xdist."""
    dsession = _dsession(config)
    queue = getattr(dsession, "queue", None)
    if queue is None:
        return False
    queue.put(("logstart", {"node": None, "nodeid": STOP_NODEID, "location": ("", None, "")}))
    return True


def end_all(config: pytest.Config, *, timeout_s: float) -> None:
    """End every worker: asked to exit, killed after ``timeout_s`` (a leaked thread
    or a stuck check must not hold the run)."""
    group = getattr(getattr(_dsession(config), "nodemanager", None), "group", None)
    if group is not None:
        group.terminate(timeout_s)


def kill(pid: int) -> bool:
    """SIGKILL ``pid`` if it is a child of this process (a worker); whether it was sent."""
    if not _our_child(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
        return True
    return False


def _our_child(pid: int) -> bool:
    """``pid`` is our child, not a stranger that reused a dead worker's pid (Linux's
    /proc says; elsewhere it is assumed)."""
    if pid == os.getpid():
        return False
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():
        return True
    try:
        fields = stat.read_text(encoding="ascii", errors="replace").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return len(fields) > 1 and fields[1] == str(os.getpid())


def _dsession(config: pytest.Config) -> Any:
    return config.pluginmanager.getplugin("dsession")


# -- workers forked from the controller --------------------------------------------------------

# Set by the `synthetic` command in the process it runs pytest in (`synthetic.launcher`):
# a process the command made for this run, with no test session around it (its
# one other thread, the watchdog, shares nothing with a worker). A plain
# ``pytest -n 4`` (or pytest's own pytester) keeps xdist's fresh interpreters.
FORK_FROM_HERE = False


def fork_workers() -> Callable[[], None]:
    """Make execnet start ``popen`` gateways as forks of this process (on Linux, when
    the command ran this process); what undoes it."""
    if not (FORK_FROM_HERE and sys.platform.startswith("linux")):
        # Linux only: on macOS a forked child that touches the system's frameworks
        # (the proxy settings httpx reads) can crash; elsewhere there is no fork.
        return lambda: None
    from execnet import gateway_io

    original = gateway_io.create_io

    def create_io(spec: Any, execmodel: Any) -> Any:
        if spec.popen and not (spec.python or spec.via or spec.dont_write_bytecode):
            return ForkedWorkerIO(execmodel)
        return original(spec, execmodel)

    gateway_io.create_io = create_io

    def undo() -> None:
        gateway_io.create_io = original

    return undo


class _Forked:
    """What execnet asks of a worker's ``Popen``: wait for it, kill it. The kill goes
    through a pidfd where the kernel has them, so it can never reach another process
    that took the pid of a worker already reaped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):
            self._pidfd = os.pidfd_open(pid)

    def wait(self) -> int | None:
        if self.returncode is None:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                return None  # reaped elsewhere: its status is gone
            with self._lock:
                self.returncode = os.waitstatus_to_exitcode(status)
                if self._pidfd is not None:
                    os.close(self._pidfd)
                    self._pidfd = None
        return self.returncode

    def kill(self) -> None:
        with self._lock:
            if self.returncode is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)


def _popen2io() -> type:
    from execnet.gateway_base import Popen2IO

    return Popen2IO


class ForkedWorkerIO(_popen2io()):  # type: ignore[misc]
    """execnet's ``Popen2IOMaster`` for a worker forked from this process."""

    def __init__(self, execmodel: Any) -> None:
        to_worker, from_controller = os.pipe()[::-1]  # (write end, read end)
        from_worker, to_controller = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        if not gc.isenabled():
            # The command's start (`synthetic.__main__`): the interpreter, the plugins,
            # the framework. Left out of later collections, the worker's (one would
            # touch, and so copy, every page it shares) and this process's. A worker
            # started later (one replacing a killed one) freezes nothing more.
            gc.freeze()
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork() with threads: the watchdog's, which the
            # worker never touches (nor a lock of it).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker; it ends with os._exit
            _serve(from_controller, to_controller)
        os.close(from_controller)
        os.close(to_controller)
        self.popen = _Forked(pid)
        super().__init__(os.fdopen(to_worker, "wb"), os.fdopen(from_worker, "rb"), execmodel)

    def wait(self) -> int | None:
        return self.popen.wait()

    def kill(self) -> None:
        self.popen.kill()


def _serve(stdin_fd: int, stdout_fd: int) -> None:  # pragma: no cover - in the worker
    """The worker: what ``python -u -c "import sys;exec(eval(sys.stdin.readline()))"``
    does with the gateway's pipes as its stdin and stdout, then exit as it would."""
    code = 0
    try:
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        # Only 0, 1 and 2, as subprocess leaves a child: not the controller's
        # copy of the command's stdout, its capture files, its sockets, nor the
        # other workers' pipes (whoever reads them would wait for this one too).
        os.closerange(3, _max_fd())
        _fresh_worker()
        line = b""
        while not line.endswith(b"\n"):
            byte = os.read(0, 1)  # one at a time: nothing after the line is consumed
            if not byte:
                raise EOFError("the controller closed the gateway before its bootstrap line")
            line += byte
        exec(eval(line.decode("utf-8")), {"__name__": "__main__"})  # execnet's own bootstrap
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        _finish()
        os._exit(code)


def _max_fd() -> int:
    with contextlib.suppress(ValueError, OSError):
        return max(256, os.sysconf("SC_OPEN_MAX"))
    return 65536


def _fresh_worker() -> None:  # pragma: no cover - in the worker
    """Reset what a fork inherits from the controller that a fresh interpreter would
    not have: its signal handlers and exit functions, its arguments, pytest's
    assertion-rewriting import hook, its log handlers, the streams (a thread may
    have held their locks at the fork), the process-wide registries of execnet and
    Allure."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(
                signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            )
    _clear_exit_functions()
    sys.argv = ["-c"]
    sys.meta_path[:] = [
        finder for finder in sys.meta_path if type(finder).__name__ != "AssertionRewritingHook"
    ]
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not type(h).__module__.startswith("_pytest")]
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )
    for name in [name for name in sys.modules if name == "execnet" or name.startswith("execnet.")]:
        del sys.modules[name]  # the bootstrap imports them afresh: no state of the controller's
    allure = sys.modules.get("allure_commons._core")
    if allure is not None:
        allure.MetaPluginManager._plugin_manager = None  # made afresh on first use


def _clear_exit_functions() -> None:  # pragma: no cover - in the worker
    """The controller's exit functions are not the worker's (execnet's would end the
    controller's gateways, `weakref.finalize`'s would remove the controller's
    temporary directories, logging's would flush the controller's handlers into
    file descriptors that are now the worker's). What the standard library runs
    at exit is registered again for the worker's own: the finalizers and log
    handlers made after the fork (a check's temporary directory is removed)."""
    clear = getattr(atexit, "_clear", None)
    if clear is None:
        return
    clear()
    registry = getattr(weakref.finalize, "_registry", None)
    if isinstance(registry, dict):
        registry.clear()  # the controller's objects: they are not the worker's to finalize
    if getattr(weakref.finalize, "_registered_with_atexit", False):
        atexit.register(weakref.finalize._exitfunc)  # type: ignore[attr-defined]
    inherited = list(getattr(logging, "_handlerList", ()))

    def shutdown_own_logging() -> None:
        current = list(getattr(logging, "_handlerList", ()))
        logging.shutdown([ref for ref in current if not any(ref is old for old in inherited)])

    atexit.register(shutdown_own_logging)
    threading_exits = getattr(threading, "_threading_atexits", None)
    if isinstance(threading_exits, list):
        threading_exits.clear()  # the controller's executors' joins


def _finish() -> None:  # pragma: no cover - in the worker
    """What an interpreter does as it exits normally: wait for the threads that are
    not daemons (a check's leaked one holds the worker, as it would a fresh one,
    until the controller ends it), run the exit functions, flush the streams."""
    for step in (getattr(threading, "_shutdown", None), getattr(atexit, "_run_exitfuncs", None)):
        if step is not None:
            with contextlib.suppress(BaseException):
                step()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
