"""Runs of the `synthetic` command in a subprocess, as a user runs it, and a
tiny project of checks to run it on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC = [sys.executable, "-m", "synthetic"]

PROJECT_CHECKS = """
import os, pytest

@pytest.mark.metric("queue", unit="requests")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_queue():
    return float(os.environ["QUEUE"])

@pytest.mark.metric("other")
@pytest.mark.critical("> 5")
def check_other():
    if os.environ.get("BROKEN"):
        raise RuntimeError("boom")
    return 1
"""


def synthetic_cmd(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    environ.update(env or {})
    return subprocess.run(
        [*SYNTHETIC, *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "check_project.py").write_text(PROJECT_CHECKS)
    (tmp_path / "synthetic.toml").write_text('[environments.sandbox]\nbase_url = "http://x"\n')
    return tmp_path


def load_results(directory: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((directory / "results.json").read_text())
    return document
