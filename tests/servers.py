"""Real servers on loopback for tests: started on a free port, stopped by PID.

Use the context managers directly, or the fixtures: from a test module with
``pytest_plugins = ["tests.servers"]``, from ``tests/conftest.py`` with::

    from tests.servers import redis_url, refused_port  # noqa: F401

A missing server binary fails the test with how to install it: CI installs
the servers, so a silent skip would hide lost coverage.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthetic.sandbox.processes import LOOPBACK, free_port
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
    "free_port",
    "redis_server",
    "redis_url",
    "refused_port",
    "start_redis_or_fail",
]


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
    return _fail_on_server_error(redis_server(**options))


@contextlib.contextmanager
def _fail_on_server_error(manager: contextlib.AbstractContextManager[str]) -> Iterator[str]:
    problem: str | None = None
    try:
        with manager as url:
            yield url
    except ServerError as exc:
        problem = str(exc)
    if problem is not None:
        # Outside the except block: the report shows the message alone.
        pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real Redis shared by the session; use distinct keys per test."""
    with start_redis_or_fail(directory=tmp_path_factory.mktemp("redis")) as url:
        yield url
