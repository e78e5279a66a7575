"""Running the monitor in a process of its own, and measuring it: exit status,
output, wall time, peak RSS; killed at a limit.

The peak RSS is read by a small wrapper process, as its child's (``RUSAGE_CHILDREN``):
a process started straight from a big one (a test process holding the hostile
server's bodies) inherits that one's peak in its own ``ru_maxrss``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.catalogue_runs import environment_toml

REPO = Path(__file__).resolve().parent.parent.parent
SYNTHETIC = [sys.executable, "-m", "synthetic"]

_WRAPPER = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(done.returncode if done.returncode >= 0 else 128 - done.returncode)
"""


@dataclass(frozen=True)
class Measured:
    code: int
    output: str
    seconds: float
    rss_mb: float  # NaN when the run was killed
    killed: bool


def run_measured(
    args: list[str], *, cwd: Path, limit_s: float, env: dict[str, str] | None = None
) -> Measured:
    """Run ``args``; still running after ``limit_s``, it is killed (its process group)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    environ.update(env or {})
    with tempfile.TemporaryDirectory() as scratch:
        rss_file = Path(scratch) / "rss"
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", _WRAPPER, str(rss_file), *args],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(limit_s, kill)
        timer.start()
        try:
            assert process.stdout is not None
            with process.stdout:
                output = process.stdout.read().decode("utf-8", "replace")
            code = process.wait()
        finally:
            timer.cancel()
        seconds = time.monotonic() - started
        rss_kb = float(rss_file.read_text()) if rss_file.exists() else math.nan
    return Measured(code, output, seconds, rss_kb / 1024, killed.is_set())


def write_config(directory: Path, base_url: str, **settings: Any) -> Path:
    """A ``synthetic.toml`` whose environment ``hostile`` points the catalogue at ``base_url``.

    Bounds small enough for tests: 1 s per request, no retries. Only keys the
    monitor has always had, unless ``settings`` adds others.
    """
    values: dict[str, Any] = {
        "base_url": base_url,
        "metrics_url": f"{base_url}/metrics",
        "connection_capacity": 100,
        "timeout_s": 1,
        "retries": 0,
        "retry_budget_s": 0,
        "check_timeout_s": 20,
        "p95_paths": ["/p95"],  # not a snapshot's path: the snapshot counts stay exact
        "p95_sample_size": 10,
        **settings,
    }
    lines = [
        'default_environment = "hostile"',
        f"checks = [{json.dumps(str(REPO / 'checks'))}]",
        *environment_toml("hostile", values),  # connection_capacity, p95_*: its params
    ]
    path = directory / "synthetic.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_catalogue(
    directory: Path, *paths: str, limit_s: float, env: dict[str, str] | None = None
) -> Measured:
    """``synthetic run`` in ``directory`` (its config), alerts off, no colour, no cache;
    ``paths`` under ``checks/`` are the catalogue's."""
    named = [str(REPO / path) if path.startswith("checks/") else path for path in paths]
    args = [*SYNTHETIC, "run", "--alerts", "off", "--color=no", "-p", "no:cacheprovider", *named]
    return run_measured(args, cwd=directory, limit_s=limit_s, env=env)


def results(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (directory / "synthetic-results" / "results.json").read_text()
    )
    return document
