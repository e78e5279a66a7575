"""moto's server on loopback for tests: a CloudWatch stand-in, stopped by PID.

moto accepts what CloudWatch would refuse (1001 metrics, 31 dimensions, an
``AWS/`` namespace), so the limits are tested on `validate`, and moto only
shows what arrived::

    with start_moto_or_fail() as moto:
        client = cloudwatch_client(moto.url)

`MotoServer.reset` empties it, so one server can serve a module. A missing
``moto_server`` fails the test with how to install it: CI installs it, so a
silent skip would hide lost coverage.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from synthetic.sandbox.processes import LOOPBACK, free_port, log_tail
from tests.servers import ServerError

__all__ = [
    "MotoServer",
    "cloudwatch_client",
    "find_moto_server",
    "moto_server",
    "start_moto_or_fail",
]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
REGION = "us-east-1"
_PORT_ATTEMPTS = 3


@dataclass(frozen=True)
class MotoServer:
    """A running moto server: its base URL and process id."""

    url: str
    pid: int

    def reset(self) -> None:
        """Forget every metric sent so far."""
        httpx.post(f"{self.url}/moto-api/reset", timeout=5).raise_for_status()


def find_moto_server() -> str | None:
    """The ``moto_server`` next to this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.is_file() else shutil.which("moto_server")


def cloudwatch_client(url: str, **config: Any) -> Any:
    """A boto3 CloudWatch client for ``url`` with dummy credentials (none from the environment).

    ``config`` goes to botocore's `Config` (``connect_timeout``, ``retries``, ...).
    """
    return boto3.session.Session().client(
        "cloudwatch",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's dummy credentials
        aws_session_token="testing",
        config=Config(**config),
    )


@contextlib.contextmanager
def moto_server(
    directory: Path | None = None, *, timeout_s: float = START_TIMEOUT_S
) -> Iterator[MotoServer]:
    """Run ``moto_server`` on a free loopback port until the block ends.

    Its log goes to ``directory`` (a temporary one by default). Raises
    `ServerError` when it is missing or does not answer within ``timeout_s``.
    """
    executable = find_moto_server()
    if executable is None:
        raise ServerError(
            "moto_server is not installed (pip install 'moto[server]'); "
            "the CloudWatch tests need it"
        )
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="synth-moto-")))
        log = directory / "moto.log"
        problem = "not started"
        for _ in range(_PORT_ATTEMPTS):
            port = free_port()
            process = _start(executable, port, log)
            try:
                problem = _wait_ready(process, port, timeout_s)
                if not problem:
                    yield MotoServer(url=f"http://{LOOPBACK}:{port}", pid=process.pid)
                    return
            finally:
                _stop(process)
            if "address already in use" not in log_tail(log).lower():
                break  # not a lost race for the port: another try will not help
        raise ServerError(f"moto_server {problem}: {log_tail(log)}")


def _start(executable: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [executable, "-H", LOOPBACK, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout_s: float) -> str:
    """'' once moto answers HTTP at all; otherwise why not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode}"
        try:
            httpx.get(f"http://{LOOPBACK}:{port}/moto-api/", timeout=1)
        except httpx.HTTPError:
            time.sleep(0.05)
        else:
            return ""
    return f"not answering within {timeout_s} s"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_moto_or_fail(**options: Any) -> contextlib.AbstractContextManager[MotoServer]:
    """`moto_server` for a test body or fixture: a missing or broken server fails the test."""
    return _fail_on_server_error(moto_server(**options))


@contextlib.contextmanager
def _fail_on_server_error(
    manager: contextlib.AbstractContextManager[MotoServer],
) -> Iterator[MotoServer]:
    problem: str | None = None
    try:
        with manager as server:
            yield server
    except ServerError as exc:
        problem = str(exc)
    if problem is not None:
        # Outside the except block: the report shows the message alone.
        pytest.fail(problem, pytrace=False)
