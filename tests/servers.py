"""Real servers on loopback for tests: started on a free port, stopped by PID.

Use the context managers directly, or the fixtures: from a test module with
``pytest_plugins = ["tests.servers"]``, from ``tests/conftest.py`` with::

    from tests.servers import redis_url, refused_port  # noqa: F401

A missing server binary fails the test with how to install it: CI installs
the servers, so a silent skip would hide lost coverage.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0


class ServerError(RuntimeError):
    """A test server could not be found, started or reached."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs.

    The socket stays bound but never listens, so no other process can take
    the port meanwhile and a connection to it is refused at once.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock.getsockname()[1]


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused (nothing listens on it)."""
    with closed_port() as port:
        yield port


def _redis_answers_ping(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return " | ".join(text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def redis_server(
    directory: Path | None = None, *, timeout_s: float = START_TIMEOUT_S
) -> Iterator[str]:
    """Run a throw-away ``redis-server`` on loopback and yield its ``redis://`` URL.

    No persistence (``--save ''``, no AOF); its files and log go to
    ``directory`` (a temporary directory by default).
    """
    executable = shutil.which("redis-server")
    if executable is None:
        raise ServerError(
            "redis-server is not installed (apt-get install -y redis-server); "
            "the Redis tests need a real server"
        )
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-")))
        directory.mkdir(parents=True, exist_ok=True)
        # Another process may take the free port before redis-server binds it:
        # then redis-server exits, and we try another port.
        for _attempt in range(3):
            port = free_port()
            log = directory / f"redis-{port}.log"
            with log.open("wb") as log_handle:
                process = subprocess.Popen(
                    [
                        executable,
                        "--bind",
                        LOOPBACK,
                        "--port",
                        str(port),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(directory),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log_handle,
                    stderr=subprocess.STDOUT,
                )
            stack.callback(_stop, process)
            deadline = time.monotonic() + timeout_s
            while process.poll() is None and time.monotonic() < deadline:
                if _redis_answers_ping(port):
                    yield f"redis://{LOOPBACK}:{port}/0"
                    return
                time.sleep(0.02)
            if process.poll() is None:
                raise ServerError(
                    f"redis-server (pid {process.pid}) did not answer PING on port {port} "
                    f"within {timeout_s:g} s; log: {_tail(log)}"
                )
        raise ServerError(
            f"redis-server exited with status {process.returncode} before answering PING; "
            f"log: {_tail(log)}"
        )


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real Redis shared by the session; use distinct keys per test."""
    problem: str | None = None
    try:
        with redis_server(tmp_path_factory.mktemp("redis")) as url:
            yield url
    except ServerError as exc:
        problem = str(exc)
    if problem is not None:
        # Outside the except block: the report shows the message alone.
        pytest.fail(problem, pytrace=False)
