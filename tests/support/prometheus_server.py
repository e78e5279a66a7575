"""A real Prometheus server (Debian's ``prometheus``, 2.42) on loopback for tests.

It scrapes the given targets every `SCRAPE_INTERVAL` into a throw-away TSDB;
stopped by PID when the block ends. A missing binary fails the test with how
to install it (CI installs it: a skip would hide lost coverage)::

    with start_prometheus_or_fail(tmp_path, targets=["127.0.0.1:9100"]) as prometheus:
        prometheus.query("up")
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import (
    LOOPBACK,
    ServerError,
    fail_on_server_error,
    http_ready,
    server_process,
)

SCRAPE_INTERVAL = "1s"
START_TIMEOUT_S = 20.0
JOB = "bff"


@dataclass(frozen=True)
class Prometheus:
    url: str
    pid: int

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result list (raises on an error answer)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        answer = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result

    def wait_for(self, promql: str, wanted: float, timeout_s: float = 20.0) -> float:
        """Poll ``promql`` (one value) until it is ``wanted``; the time of that answer's
        newest sample: the scrape that saw it."""
        deadline = time.monotonic() + timeout_s
        found: Any = None
        while time.monotonic() < deadline:
            result = self.query(promql)
            found = float(result[0]["value"][1]) if result else None
            if found == wanted:
                stamps = self.query(f'timestamp(up{{job="{JOB}"}})')
                return float(stamps[0]["value"][1])
            time.sleep(0.2)
        raise AssertionError(f"{promql} = {found}, not {wanted}, after {timeout_s} s")


@contextlib.contextmanager
def prometheus_server(directory: Path, *, targets: Sequence[str]) -> Iterator[Prometheus]:
    executable = shutil.which("prometheus")
    if executable is None:
        raise ServerError(
            "prometheus is not installed (apt-get install -y prometheus); "
            "the Prometheus log source tests need a real server"
        )
    config = directory / "prometheus.yml"
    listed = ", ".join(f'"{t}"' for t in targets)
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_INTERVAL}\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [{listed}]\n",
        encoding="utf-8",
    )
    with server_process(
        "prometheus",
        lambda port: [
            executable,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
        ],
        ready=http_ready(f"http://{LOOPBACK}:{{port}}/-/ready"),
        log=directory / "prometheus.log",
        timeout_s=START_TIMEOUT_S,
    ) as (port, pid):
        yield Prometheus(f"http://{LOOPBACK}:{port}", pid)


def start_prometheus_or_fail(
    directory: Path, *, targets: Sequence[str]
) -> contextlib.AbstractContextManager[Prometheus]:
    return fail_on_server_error(prometheus_server(directory, targets=targets))
