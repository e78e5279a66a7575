"""Real Node.js BFFs (``tests/node/*_bff.js``) on loopback, and a driver for them.

Each app is a small portal BFF built on the npm libraries real portals use,
installed by ``.ci/run`` into ``.ci/tools/node_modules``. `node_app` starts
one on a free port with its Pino log in a directory, waits for its ready line
and stops it by PID; the module-scoped fixtures ``express_bff``, ``nest_bff``
and ``fastify_bff`` (imported by ``tests/conftest.py``) start each once per
test module that uses it.

`drive` sends a known mix of traffic (`Orders`, `Calls`, some of it with the
monitor's own identity) and waits until the app has logged it;
``tests/support/node_truth.py`` computes the metrics' ground truth from the files.
Without node or the packages the tests skip with why, except under CI, where
they fail: CI installs them, so a skip would hide lost coverage.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthetic import __version__
from synthetic.sandbox.processes import log_tail
from tests.support.node_truth import is_request, parse, read_lines
from tests.support.servers import LOOPBACK, ServerError, fail_on_server_error, stop_process

REPO = Path(__file__).resolve().parents[2]
NODE_APPS_DIR = REPO / "tests" / "node"
NODE_MODULES = REPO / ".ci" / "tools" / "node_modules"
APPS = {"express": "express_bff.js", "nest": "nest_bff.js", "fastify": "fastify_bff.js"}
PACKAGES = (
    "pino",
    "pino-http",
    "express",
    "fastify",
    "prom-client",
    "@nestjs/core",
    "@nestjs/common",
    "@nestjs/platform-express",
    "nestjs-pino",
    "@nestjs/terminus",
    "reflect-metadata",
    "rxjs",
)
NODE_MAJOR = 20
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
LOGGED_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0
OWN_AGENT = f"synthetic/{__version__}"


def missing_node(packages: Sequence[str] = PACKAGES) -> str | None:
    """Why node with ``packages`` cannot run here, or None."""
    node = shutil.which("node")
    if node is None:
        return "node is not installed"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR:
        return f"node {version.stdout.strip() or '?'} is older than {NODE_MAJOR}"
    missing = [p for p in packages if not (NODE_MODULES / p / "package.json").is_file()]
    if missing:
        return f"npm packages missing from {NODE_MODULES}: {', '.join(missing)}"
    return None


def require_node(packages: Sequence[str] = PACKAGES) -> None:
    """Skip the test when node or ``packages`` are missing, with why; under CI fail instead."""
    reason = missing_node(packages)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: `bash .ci/run` installs them", pytrace=False)
    pytest.skip(f"{reason}; `bash .ci/run` installs them")


@dataclass(frozen=True)
class NodeApp:
    """A running app: where it listens and where it logs."""

    stack: str  # express | nest | fastify (tests/support/node_truth.py knows each one's lines)
    pid: int
    port: int
    admin_port: int | None
    log_file: Path
    error_log_file: Path | None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def admin_url(self) -> str | None:
        return None if self.admin_port is None else f"http://{LOOPBACK}:{self.admin_port}"

    @property
    def log_files(self) -> tuple[Path, ...]:
        extra = () if self.error_log_file is None else (self.error_log_file,)
        return (self.log_file, *extra)

    def offsets(self) -> dict[Path, int]:
        """Where each log file ends now: read from here to see only what follows."""
        return {path: path.stat().st_size if path.exists() else 0 for path in self.log_files}

    def logged_requests(self, since: dict[Path, int] | None = None) -> int:
        """Completed requests in the combined log (from ``since`` on)."""
        if not self.log_file.exists():
            return 0
        records, _ = parse(read_lines([self.log_file], since))
        return sum(1 for record in records if is_request(self.stack, record))


@contextlib.contextmanager
def node_program(
    program: str, *args: str, packages: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Run ``tests/node/<program>`` with ``args``; yield its ready line (JSON).

    Skips (fails under CI) without node or ``packages``; its stderr goes to
    ``log``; a `ServerError` when it exits or prints nothing within
    READY_TIMEOUT_S. Stopped by PID when the block ends.
    """
    require_node(packages)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NODE_PATH": str(NODE_MODULES),
        "HOST": LOOPBACK,
        "PORT": "0",
        **(env or {}),
    }
    with log.open("ab") as stderr:
        process = subprocess.Popen(
            ["node", str(NODE_APPS_DIR / program), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=environment,
        )
    try:
        yield _ready_line(process, program, log)
    finally:
        stop_process(process, STOP_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()


@contextlib.contextmanager
def node_app(
    stack: str, directory: Path, *, error_log: bool = True, env: dict[str, str] | None = None
) -> Iterator[NodeApp]:
    """Run ``tests/node/<stack>_bff.js`` on loopback, logging to ``directory``.

    A `ServerError` (with the end of its stderr) when it exits or is not ready
    within READY_TIMEOUT_S. Stopped by PID: SIGTERM, SIGKILL after STOP_TIMEOUT_S.
    """
    directory.mkdir(parents=True, exist_ok=True)
    log_file = directory / "combined.log"
    error_log_file = directory / "error.log" if error_log else None
    stderr_path = directory / f"{stack}.stderr"
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NODE_PATH": str(NODE_MODULES),
        "HOST": LOOPBACK,
        "PORT": "0",
        "ADMIN_PORT": "0",
        "LOG_FILE": str(log_file),
        **({"ERROR_LOG_FILE": str(error_log_file)} if error_log_file else {}),
        **(env or {}),
    }
    with stderr_path.open("ab") as stderr:
        process = subprocess.Popen(
            ["node", str(NODE_APPS_DIR / APPS[stack])],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=environment,
            cwd=directory,
        )
    try:
        ready = _ready_line(process, stack, stderr_path)
        if not isinstance(ready.get("port"), int):
            raise ServerError(f'{stack} app: ready line is not {{"port": N, ...}}: {ready!r}')
        yield NodeApp(
            stack=stack,
            pid=process.pid,
            port=int(ready["port"]),
            admin_port=int(ready["admin_port"]) if "admin_port" in ready else None,
            log_file=log_file,
            error_log_file=error_log_file,
        )
    finally:
        stop_process(process, STOP_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()


def _ready_line(process: subprocess.Popen[bytes], stack: str, stderr: Path) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in received:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError(
                    f"{stack} app not ready within {READY_TIMEOUT_S} s: {log_tail(stderr)}"
                )
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                code = process.wait(timeout=STOP_TIMEOUT_S)
                raise ServerError(f"{stack} app exited with code {code}: {log_tail(stderr)}")
            received += chunk
    line = received.split(b"\n", 1)[0]
    try:
        ready = json.loads(line)
    except ValueError:
        ready = None
    if not isinstance(ready, dict):
        raise ServerError(f"{stack}: the ready line is not a JSON object: {line[:200]!r}")
    return ready


def _app_fixture(stack: str):
    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeApp]:
        require_node()
        with fail_on_server_error(node_app(stack, tmp_path_factory.mktemp(stack))) as app:
            yield app

    fixture.__doc__ = f"The {stack} BFF (tests/node/{APPS[stack]}), one per test module."
    return fixture


express_bff = _app_fixture("express")
nest_bff = _app_fixture("nest")
fastify_bff = _app_fixture("fastify")


# --- traffic ---------------------------------------------------------------


@dataclass(frozen=True)
class Orders:
    """``count`` requests to ``GET /api/orders/:id`` answering ``status`` after ``delay_ms``."""

    count: int
    status: int = 200
    delay_ms: int = 0
    throws: bool = False  # the handler throws instead (the app answers 500)
    own: bool = False  # carry the monitor's identity

    def requests(self) -> list[tuple[str, dict[str, str]]]:
        params = {"status": str(self.status), "delay_ms": str(self.delay_ms)}
        if self.throws:
            params["throw"] = "1"
        return [(f"/api/orders/{n}", params) for n in range(self.count)]


@dataclass(frozen=True)
class Calls:
    """``count`` requests to ``GET /api/calls/:dependency``: each makes one outgoing call.

    ``fail``: None (the dependency answers ``status``, 200 by default), "1" (it
    answers ``status``, 503 by default) or "reset" (it drops the connection).
    """

    dependency: str
    count: int
    fail: str | None = None
    delay_ms: int = 0
    status: int | None = None
    own: bool = False

    def requests(self) -> list[tuple[str, dict[str, str]]]:
        params = {"delay_ms": str(self.delay_ms)}
        if self.fail is not None:
            params["fail"] = self.fail
        if self.status is not None:
            params["status"] = str(self.status)
        return [(f"/api/calls/{self.dependency}", params)] * self.count


@dataclass(frozen=True)
class Sent:
    path: str
    params: dict[str, str]
    status: int  # what the app answered
    own: bool
    correlation_id: str | None


@dataclass(frozen=True)
class Driven:
    sent: tuple[Sent, ...]
    since: dict[Path, int] = field(default_factory=dict)  # log offsets before the first request

    def answered(self, status: int, *, own: bool = False) -> int:
        return sum(1 for s in self.sent if s.status == status and s.own == own)


def drive(
    app: NodeApp, plan: Sequence[Orders | Calls], *, run_id: str = "run1", concurrency: int = 8
) -> Driven:
    """Send ``plan`` to ``app`` (``concurrency`` at a time) and wait until all of it is logged.

    Requests of a step with ``own=True`` carry ``X-Correlation-Id:
    synthetic-<run_id>-check_<n>`` and ``User-Agent: synthetic/<version>``,
    as the monitor's probes do; the others carry httpx's defaults.
    """
    since = app.offsets()
    jobs: list[tuple[str, dict[str, str], bool, str | None]] = []
    for step in plan:
        for path, params in step.requests():
            check = f"check_{len(jobs)}"
            correlation = f"synthetic-{run_id}-{check}" if step.own else None
            jobs.append((path, params, step.own, correlation))

    with httpx.Client(base_url=app.url, timeout=REQUEST_TIMEOUT_S) as client:

        def send(job: tuple[str, dict[str, str], bool, str | None]) -> Sent:
            path, params, own, correlation = job
            headers = (
                {"X-Correlation-Id": correlation, "User-Agent": OWN_AGENT} if correlation else {}
            )
            response = client.get(path, params=params, headers=headers)
            return Sent(path, params, response.status_code, own, correlation)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            sent = tuple(pool.map(send, jobs))

    # A request's line is written when its response has finished, which can be
    # a moment after the client has the answer.
    deadline = time.monotonic() + LOGGED_TIMEOUT_S
    while (logged := app.logged_requests(since)) < len(sent):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{app.stack} app logged {logged} of {len(sent)} requests "
                f"within {LOGGED_TIMEOUT_S} s"
            )
        time.sleep(0.02)
    return Driven(sent, since)
