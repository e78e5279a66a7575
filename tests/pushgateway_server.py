"""A real ``prometheus-pushgateway`` on loopback for tests, stopped by PID::

    with start_pushgateway_or_fail() as gateway:
        push(run, gateway.url)
        text = gateway.metrics()

``basic_auth={"user": bcrypt_hash}`` makes it demand basic auth (its
``--web.config.file``); `Pushgateway.auth` then holds what `metrics` sends.
A missing binary fails the test with how to install it (CI installs it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from synthetic.sandbox.processes import LOOPBACK, free_port, log_tail
from tests.servers import ServerError

__all__ = ["Pushgateway", "find_pushgateway", "pushgateway_server", "start_pushgateway_or_fail"]

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 3
_KNOWN_LOCATIONS = ("/usr/bin/prometheus-pushgateway", "/usr/local/bin/pushgateway")


@dataclass(frozen=True)
class Pushgateway:
    """A running Pushgateway: its base URL and process id."""

    url: str
    pid: int
    auth: tuple[str, str] | None = None

    def metrics(self) -> str:
        """``GET /metrics``: everything the gateway holds, as Prometheus text."""
        answer = httpx.get(f"{self.url}/metrics", auth=self.auth, timeout=5)
        answer.raise_for_status()
        return answer.text


def find_pushgateway() -> str | None:
    """The path of the Pushgateway binary, or None when it is not installed."""
    found = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if found:
        return found
    return next((p for p in _KNOWN_LOCATIONS if Path(p).is_file()), None)


@contextlib.contextmanager
def pushgateway_server(
    directory: Path | None = None,
    *,
    basic_auth: Mapping[str, str] | None = None,
    login: tuple[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Iterator[Pushgateway]:
    """Run a Pushgateway on a free loopback port; its persistence file and log go to ``directory``.

    ``basic_auth`` maps users to bcrypt hashes of their passwords; ``login``
    (a user and the plain password) is what `Pushgateway.metrics` sends.

    Raises `ServerError` when it is missing or not ready within ``timeout_s``.
    """
    executable = find_pushgateway()
    if executable is None:
        raise ServerError(
            "prometheus-pushgateway is not installed (apt-get install -y "
            "prometheus-pushgateway); the Pushgateway tests need the real server"
        )
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="synth-pg-")))
        log = directory / "pushgateway.log"
        web_config = None
        if basic_auth:
            web_config = directory / "web.yml"
            users = "".join(f"  {json.dumps(u)}: {json.dumps(h)}\n" for u, h in basic_auth.items())
            web_config.write_text(f"basic_auth_users:\n{users}", encoding="utf-8")
        problem = "not started"
        for _ in range(_PORT_ATTEMPTS):
            port = free_port()
            process = _start(executable, directory / "metrics.store", port, log, web_config)
            try:
                problem = _wait_ready(process, port, timeout_s, login)
                if not problem:
                    yield Pushgateway(url=f"http://{LOOPBACK}:{port}", pid=process.pid, auth=login)
                    return
            finally:
                _stop(process)
            if "address already in use" not in log_tail(log).lower():
                break  # not a lost race for the port: another try will not help
        raise ServerError(f"prometheus-pushgateway {problem}: {log_tail(log)}")


def _start(
    executable: str, store: Path, port: int, log: Path, web_config: Path | None
) -> subprocess.Popen[bytes]:
    command = [
        executable,
        f"--web.listen-address={LOOPBACK}:{port}",
        f"--persistence.file={store}",
        "--log.level=warn",
    ]
    if web_config is not None:
        command.append(f"--web.config.file={web_config}")
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(
    process: subprocess.Popen[bytes], port: int, timeout_s: float, login: tuple[str, str] | None
) -> str:
    """'' once ``GET /-/ready`` answers 200; otherwise why not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode}"
        try:
            answer = httpx.get(f"http://{LOOPBACK}:{port}/-/ready", auth=login, timeout=1)
            if answer.status_code == 200:
                return ""
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return f"not ready within {timeout_s} s"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_pushgateway_or_fail(
    directory: Path | None = None,
    *,
    basic_auth: Mapping[str, str] | None = None,
    login: tuple[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> contextlib.AbstractContextManager[Pushgateway]:
    """`pushgateway_server` for a test body: a missing or broken server fails the test."""
    return _fail_on_server_error(
        pushgateway_server(directory, basic_auth=basic_auth, login=login, timeout_s=timeout_s)
    )


@contextlib.contextmanager
def _fail_on_server_error(
    manager: contextlib.AbstractContextManager[Pushgateway],
) -> Iterator[Pushgateway]:
    problem: str | None = None
    try:
        with manager as server:
            yield server
    except ServerError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
