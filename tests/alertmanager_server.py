"""A real ``prometheus-alertmanager`` on loopback for tests, stopped by PID.

Its one route sends every alert, alone in its group, to a webhook (a
`tests.alert_receivers.WebhookStandIn`) with ``send_resolved: true``; group
wait and interval are short so a test sees firing, then resolved, in well
under a second::

    with WebhookStandIn() as hook, alertmanager_server(hook.url) as am:
        httpx.post(f"{am.url}/api/v2/alerts", json=[...])
        hook.wait_for(lambda docs: any(d["status"] == "resolved" for d in docs))

A missing binary fails the test with how to install it (CI installs it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from synthetic.sandbox.processes import LOOPBACK, free_port, log_tail
from tests.servers import ServerError

__all__ = ["Alertmanager", "alertmanager_server", "find_alertmanager", "start_alertmanager_or_fail"]

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 3
_KNOWN_LOCATIONS = ("/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager")

# Every label set is its own group ("..."), so one webhook call carries one alert.
CONFIG = """\
route:
  receiver: webhook
  group_by: ['...']
  group_wait: 50ms
  group_interval: 200ms
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
"""


@dataclass(frozen=True)
class Alertmanager:
    """A running Alertmanager: its base URL and process id."""

    url: str
    pid: int

    def alerts(self, **filters: str) -> list[Any]:
        """``GET /api/v2/alerts``: the alerts it holds (``filters`` as query parameters)."""
        answer = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=5)
        answer.raise_for_status()
        data: list[Any] = answer.json()
        return data


def find_alertmanager() -> str | None:
    """The path of the Alertmanager binary, or None when it is not installed."""
    found = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if found:
        return found
    return next((p for p in _KNOWN_LOCATIONS if Path(p).is_file()), None)


@contextlib.contextmanager
def alertmanager_server(
    webhook_url: str, directory: Path | None = None, *, timeout_s: float = START_TIMEOUT_S
) -> Iterator[Alertmanager]:
    """Run Alertmanager on a free loopback port, routing to ``webhook_url``.

    Its config, data and log go to ``directory`` (a temporary one by
    default). Raises `ServerError` when it is missing or does not get ready
    within ``timeout_s``.
    """
    executable = find_alertmanager()
    if executable is None:
        raise ServerError(
            "prometheus-alertmanager is not installed (apt-get install -y "
            "prometheus-alertmanager); the Alertmanager tests need the real server"
        )
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="synth-am-")))
        config = directory / "alertmanager.yml"
        config.write_text(CONFIG.format(webhook_url=json.dumps(webhook_url)), encoding="utf-8")
        (directory / "data").mkdir(exist_ok=True)
        log = directory / "alertmanager.log"
        problem = "not started"
        for _ in range(_PORT_ATTEMPTS):
            port = free_port()
            process = _start(executable, config, directory / "data", port, log)
            try:
                problem = _wait_ready(process, port, timeout_s)
                if not problem:
                    yield Alertmanager(url=f"http://{LOOPBACK}:{port}", pid=process.pid)
                    return
            finally:
                _stop(process)
            if "address already in use" not in log_tail(log).lower():
                break  # not a lost race for the port: another try will not help
        raise ServerError(f"prometheus-alertmanager {problem}: {log_tail(log)}")


def _start(
    executable: str, config: Path, data: Path, port: int, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                executable,
                f"--config.file={config}",
                f"--storage.path={data}",
                f"--web.listen-address={LOOPBACK}:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout_s: float) -> str:
    """'' once ``GET /-/ready`` answers 200; otherwise why not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"exited with code {process.returncode}"
        try:
            if httpx.get(f"http://{LOOPBACK}:{port}/-/ready", timeout=1).status_code == 200:
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


def start_alertmanager_or_fail(
    webhook_url: str, **options: Any
) -> contextlib.AbstractContextManager[Alertmanager]:
    """`alertmanager_server` for a test body: a missing or broken server fails the test."""
    return _fail_on_server_error(alertmanager_server(webhook_url, **options))


@contextlib.contextmanager
def _fail_on_server_error(
    manager: contextlib.AbstractContextManager[Alertmanager],
) -> Iterator[Alertmanager]:
    problem: str | None = None
    try:
        with manager as server:
            yield server
    except ServerError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
