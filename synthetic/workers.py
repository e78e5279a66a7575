"""The xdist workers, as the controller's watchdog handles them.

What touches xdist's session is kept here: its plugin's event ``queue`` (to
leave its loop at the run's deadline, between two events, the way a
worker's own event would) and ``nodemanager.group`` (the execnet gateways,
to end every worker at once). Both are attributes of xdist's ``DSession``
plugin, the same in xdist 2 and 3, not a documented API: if they move, the
run still ends at its deadline, by the watchdog's last resort
(`synthetic.watchdog`).
"""

from __future__ import annotations

import contextlib
import os
import signal
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
