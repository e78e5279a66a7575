"""Real servers on loopback for tests: started on a free port, stopped by PID.

Use the context managers directly, or the fixtures: from a test module with
``pytest_plugins = ["tests.support.servers"]``, from ``tests/conftest.py`` with::

    from tests.support.servers import redis_url, refused_port  # noqa: F401

A missing server binary fails the test with how to install it: CI installs
the servers, so a silent skip would hide lost coverage.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from synthetic.sandbox.processes import LOOPBACK, free_port, log_tail
from synthetic.sandbox.redis_server import (
    START_TIMEOUT_S,
    RedisServer,
    RedisServerError,
    find_redis_server,
)

__all__ = [
    "LOOPBACK",
    "ServerError",
    "closed_port",
    "fail_on_server_error",
    "free_port",
    "http_ready",
    "redis_server",
    "redis_url",
    "refused_port",
    "server_process",
    "start_redis_or_fail",
    "stop_process",
]

T = TypeVar("T")


class ServerError(RuntimeError):
    """A test server could not be found, started or reached."""


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


@contextlib.contextmanager
def redis_server(
    directory: Path | None = None,
    *,
    timeout_s: float = START_TIMEOUT_S,
    maxmemory: int | str | None = None,
    maxmemory_policy: str | None = None,
) -> Iterator[str]:
    """Run a throw-away ``redis-server`` on loopback and yield its ``redis://`` URL.

    No persistence (``--save ''``, no AOF); its files and log go to
    ``directory`` (a temporary directory by default). The package's
    `RedisServer` does the work (``synthetic demo`` uses it too).
    """
    if find_redis_server() is None:
        raise ServerError(
            "redis-server is not installed (apt-get install -y redis-server); "
            "the Redis tests need a real server"
        )
    server = RedisServer(
        directory,
        maxmemory=maxmemory,
        maxmemory_policy=maxmemory_policy,
        start_timeout_s=timeout_s,
    )
    try:
        server.start()
    except RedisServerError as exc:
        raise ServerError(str(exc)) from None
    with server:
        yield server.url


def start_redis_or_fail(**options: Any) -> contextlib.AbstractContextManager[str]:
    """`redis_server` for a test body: a missing or broken server fails the test with why."""
    return fail_on_server_error(redis_server(**options))


@contextlib.contextmanager
def fail_on_server_error(manager: contextlib.AbstractContextManager[T]) -> Iterator[T]:
    """``manager`` for a test body: a `ServerError` fails the test with its message."""
    problem: str | None = None
    try:
        with manager as server:
            yield server
    except ServerError as exc:
        problem = str(exc)
    if problem is not None:
        # Outside the except block: the report shows the message alone.
        pytest.fail(problem, pytrace=False)


def http_ready(url: str, **options: Any) -> Callable[[int], bool]:
    """A readiness probe: ``url`` (with ``{port}``) answers 200."""

    def ready(port: int) -> bool:
        try:
            return httpx.get(url.format(port=port), timeout=1, **options).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


@contextlib.contextmanager
def server_process(
    name: str,
    command: Callable[[int], list[str]],
    *,
    ready: Callable[[int], bool],
    log: Path,
    timeout_s: float = START_TIMEOUT_S,
    attempts: int = 3,
) -> Iterator[tuple[int, int]]:
    """Run ``command(port)`` on a free loopback port until the block ends.

    Yields ``(port, pid)`` once ``ready(port)``; stops the process by PID.
    Another process may take the free port first: then it tries another, a
    few times. A server that exits or is not ready within ``timeout_s`` is a
    `ServerError` with the end of its log.
    """
    problem = "not started"
    for _ in range(attempts):
        port = free_port()
        with log.open("ab") as output:
            process = subprocess.Popen(
                command(port), stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )
        try:
            problem = _wait(process, port, ready, timeout_s)
            if not problem:
                yield port, process.pid
                return
        finally:
            stop_process(process)
        if "address already in use" not in log_tail(log).lower():
            break  # not a lost race for the port: another try will not help
    raise ServerError(f"{name} {problem}: {log_tail(log)}")


def _wait(
    process: subprocess.Popen[bytes], port: int, ready: Callable[[int], bool], timeout_s: float
) -> str:
    """'' once ``ready(port)``; otherwise why not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode}"
        if ready(port):
            return ""
        time.sleep(0.05)
    return f"not ready within {timeout_s} s"


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Terminate, then kill if it lingers; always reaped."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real Redis shared by the session; use distinct keys per test."""
    with start_redis_or_fail(directory=tmp_path_factory.mktemp("redis")) as url:
        yield url
