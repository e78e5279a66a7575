"""Node programs of tests/node/, run with the npm packages pinned in `.ci/tools`.

A program prints one JSON line when it is ready (what it made, the port it
listens on) and then runs until it is stopped by its PID. Missing Node or
packages skip the test with the reason, and fail it under CI (``CI`` set),
where `.ci/run` installs them: a silent skip there would hide lost coverage.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import stop_process

REPO = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO / ".ci" / "tools" / "node_modules"
PROGRAMS = REPO / "tests" / "node"
READY_TIMEOUT_S = 40.0


def node_with(*packages: str) -> str:
    """The ``node`` executable, when it and ``packages`` (in `.ci/tools`) are installed."""
    node = shutil.which("node")
    missing = [p for p in packages if not (NODE_MODULES / p / "package.json").is_file()]
    if node is None or missing:
        what = "node" if node is None else ", ".join(missing)
        message = f"{what} not installed (npm packages go to {NODE_MODULES.relative_to(REPO)})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: `bash .ci/run` installs them", pytrace=False)
        pytest.skip(f"{message}; `bash .ci/run` installs them")
    assert node is not None
    return node


@contextlib.contextmanager
def node_program(
    program: str, *args: str, packages: tuple[str, ...], log: Path
) -> Iterator[dict[str, Any]]:
    """Run ``tests/node/<program>`` with ``args``; yield its first line of output as JSON.

    Its stderr goes to ``log``. It is stopped by PID when the block ends; a
    program that exits, or prints nothing within `READY_TIMEOUT_S`, fails the
    test with the end of its log.
    """
    node = node_with(*packages)
    environment = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    with log.open("ab") as errors:
        process = subprocess.Popen(
            [node, str(PROGRAMS / program), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=environment,
        )
    try:
        line = _first_line(process, READY_TIMEOUT_S)
        if not line:
            process.poll()
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(
                f"{program} printed nothing (exit code {process.returncode}): {tail}",
                pytrace=False,
            )
        yield dict(json.loads(line))
    finally:
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()


def _first_line(process: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The first line the process prints; '' when it exits or the time is up first."""
    lines: list[bytes] = []
    assert process.stdout is not None
    reader = threading.Thread(
        target=lambda: lines.append(process.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reader.join(timeout_s)
    return lines[0].decode().strip() if lines else ""
