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
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from synthetic.sandbox.processes import LOOPBACK
from tests.support.servers import ServerError, fail_on_server_error, server_process

__all__ = [
    "MotoServer",
    "cloudwatch_client",
    "find_moto_server",
    "moto_server",
    "start_moto_or_fail",
]

START_TIMEOUT_S = 20.0
REGION = "us-east-1"


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
        with server_process(
            "moto_server",
            lambda port: [executable, "-H", LOOPBACK, "-p", str(port)],
            ready=_answers,
            log=log,
            timeout_s=timeout_s,
        ) as (port, pid):
            yield MotoServer(url=f"http://{LOOPBACK}:{port}", pid=pid)


def _answers(port: int) -> bool:
    """moto is ready once it answers HTTP at all."""
    try:
        httpx.get(f"http://{LOOPBACK}:{port}/moto-api/", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def start_moto_or_fail(**options: Any) -> contextlib.AbstractContextManager[MotoServer]:
    """`moto_server` for a test body or fixture: a missing or broken server fails the test."""
    return fail_on_server_error(moto_server(**options))
