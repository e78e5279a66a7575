"""A real ``prometheus-alertmanager`` on loopback for tests, stopped by PID.

Its one route sends every alert, alone in its group, to a webhook (a
`tests.support.alert_receivers.WebhookStandIn`) with ``send_resolved: true``; group
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
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from synthetic.sandbox.processes import LOOPBACK
from tests.support.servers import ServerError, fail_on_server_error, http_ready, server_process

__all__ = ["Alertmanager", "alertmanager_server", "find_alertmanager", "start_alertmanager_or_fail"]

START_TIMEOUT_S = 10.0
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
        command = [
            executable,
            f"--config.file={config}",
            f"--storage.path={directory / 'data'}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        with server_process(
            "prometheus-alertmanager",
            lambda port: [*command, f"--web.listen-address={LOOPBACK}:{port}"],
            ready=http_ready(f"http://{LOOPBACK}:{{port}}/-/ready"),
            log=log,
            timeout_s=timeout_s,
        ) as (port, pid):
            yield Alertmanager(url=f"http://{LOOPBACK}:{port}", pid=pid)


def start_alertmanager_or_fail(
    webhook_url: str, **options: Any
) -> contextlib.AbstractContextManager[Alertmanager]:
    """`alertmanager_server` for a test body: a missing or broken server fails the test."""
    return fail_on_server_error(alertmanager_server(webhook_url, **options))
