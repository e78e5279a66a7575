"""`synthetic serve` as a subprocess for the tests: started on a free port, read over
HTTP, stopped by SIGTERM (and its exit checked)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


@dataclass
class Serving:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    exit_code: int | None = None

    def get(self, path: str, **options: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **options)

    def rounds(self) -> int:
        return int(self.get("/healthz").json()["rounds"])

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def children(self) -> set[int]:
        """The pids of the runner's child processes (its zygote)."""
        found: set[int] = set()
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found |= {int(p) for p in (task / "children").read_text().split()}
        return found

    def wait_for(self, what: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve ended (exit {self.process.returncode}):\n"
                                     + self.output()[-3000:])  # fmt: skip
            with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                if what():
                    return
            time.sleep(0.1)
        raise AssertionError(f"not within {timeout_s} s; serve said:\n{self.output()[-3000:]}")

    def wait_rounds(self, count: int, timeout_s: float = 30.0) -> None:
        self.wait_for(lambda: self.rounds() >= count, timeout_s)

    def stop(self, timeout_s: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.exit_code = self.process.wait(timeout_s)
        return self.exit_code


@contextlib.contextmanager
def serving(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[Serving]:
    """``synthetic serve ARGS --listen 127.0.0.1:0``, until the block ends (then SIGTERM)."""
    log = tmp_path / f"serve-{time.monotonic_ns()}.log"
    environ = {**os.environ, **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "synthetic", "serve", "--listen", "127.0.0.1:0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=cwd or tmp_path,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        url = None
        while url is None and time.monotonic() < deadline and process.poll() is None:
            found = re.search(r"(http://127\.0\.0\.1:\d+) \(", log.read_text(errors="replace"))
            url = found.group(1) if found else None
            time.sleep(0.05)
        if url is None:
            raise AssertionError(f"serve did not start:\n{log.read_text(errors='replace')}")
        serving = Serving(process, url, log)
        yield serving
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone but for its parent's wait.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return False


def repo_config() -> list[str]:
    return ["--config", str(REPO / "pyproject.toml"), "--env", "sandbox"]
