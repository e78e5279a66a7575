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
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from synthetic.sandbox.processes import LOOPBACK
from tests.support.servers import ServerError, fail_on_server_error, http_ready, server_process

__all__ = ["Pushgateway", "find_pushgateway", "pushgateway_server", "start_pushgateway_or_fail"]

START_TIMEOUT_S = 10.0
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
        command = [
            executable,
            f"--persistence.file={directory / 'metrics.store'}",
            "--log.level=warn",
        ]
        if web_config is not None:
            command.append(f"--web.config.file={web_config}")
        with server_process(
            "prometheus-pushgateway",
            lambda port: [*command, f"--web.listen-address={LOOPBACK}:{port}"],
            ready=http_ready(f"http://{LOOPBACK}:{{port}}/-/ready", auth=login),
            log=log,
            timeout_s=timeout_s,
        ) as (port, pid):
            yield Pushgateway(url=f"http://{LOOPBACK}:{port}", pid=pid, auth=login)


def start_pushgateway_or_fail(
    directory: Path | None = None,
    *,
    basic_auth: Mapping[str, str] | None = None,
    login: tuple[str, str] | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> contextlib.AbstractContextManager[Pushgateway]:
    """`pushgateway_server` for a test body: a missing or broken server fails the test."""
    return fail_on_server_error(
        pushgateway_server(directory, basic_auth=basic_auth, login=login, timeout_s=timeout_s)
    )
