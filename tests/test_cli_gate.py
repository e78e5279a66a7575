"""`synthetic gate --settle`: a service warming up after a deploy gets time, and only it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.support.cli_runs import load_results, synthetic_cmd

# `warming` is critical until the time written in ready_at; every run of a
# check appends a line to <check>.runs, so the test counts the re-runs.
WARMING_CHECKS = """
import os, pathlib, time, pytest

STATE = pathlib.Path(os.environ["STATE_DIR"])

def ran(name):
    with open(STATE / f"{name}.runs", "a") as runs:
        runs.write("run\\n")

@pytest.mark.metric("warming")
@pytest.mark.critical("> 0")
def check_warming():
    ran("warming")
    return 0 if time.time() >= float((STATE / "ready_at").read_text()) else 1

@pytest.mark.metric("steady")
@pytest.mark.critical("> 0")
def check_steady():
    ran("steady")
    return 0
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "check_project.py").write_text(WARMING_CHECKS)
    (tmp_path / "synthetic.toml").write_text('[environments.sandbox]\nbase_url = "http://x"\n')
    return tmp_path


def gate(project: Path, ready_in_s: float, *args: str) -> tuple[int, str, float]:
    (project / "ready_at").write_text(str(time.time() + ready_in_s))
    started = time.monotonic()
    # Without Hypothesis' plugin, whose import is most of pytest's start-up here.
    done = synthetic_cmd(
        "gate", *args, "-p", "no:hypothesispytest", cwd=project, env={"STATE_DIR": str(project)}
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def runs(project: Path, check: str) -> int:
    path = project / f"{check}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


def severities(project: Path) -> dict[str, str]:
    checks = load_results(project / "synthetic-results")["checks"]
    return {check["metric"]: check["severity"] for check in checks}


@pytest.mark.slow
def test_a_check_that_recovers_settles_and_only_it_is_run_again(project: Path) -> None:
    # Ready 8 s after the first run begins: each run starts a worker (a second or two).
    code, output, _ = gate(project, 8, "--settle", "30s", "--settle-every", "1s")
    assert code == 0, output
    assert "synthetic gate: waiting for 1 check(s) to settle (warming CRITICAL); " in output
    assert "synthetic gate: settled after " in output
    assert "synthetic gate: PASSED" in output
    assert runs(project, "steady") == 1
    assert 2 <= runs(project, "warming") <= 9  # one a second at most, until ready_at
    # results.json is the decision: the steady check's first result, warming's last.
    assert severities(project) == {"warming": "ok", "steady": "ok"}


@pytest.mark.slow
def test_a_check_that_never_recovers_fails_after_the_settle_time(project: Path) -> None:
    code, output, elapsed = gate(project, 3600, "--settle", "3s", "--settle-every", "1s")
    assert code == 1, output
    # The settle time, and the last attempt's own run (a worker's start-up included).
    waited = re.search(r"synthetic gate: not settled after (\d+)s: warming CRITICAL", output)
    assert waited is not None, output
    assert 3 <= int(waited.group(1)) < 3 + 15
    assert "synthetic gate: FAILED" in output
    assert 3 <= elapsed < 3 + 15  # the settle time, plus process and pytest start-up
    assert runs(project, "steady") == 1
    # The first run, then one a second at most (at 1s, 2s and 3s when a run takes less).
    assert 2 <= runs(project, "warming") <= 4
    assert severities(project) == {"warming": "critical", "steady": "ok"}


@pytest.mark.parametrize("settle", [(), ("--settle", "0")])
@pytest.mark.slow
def test_without_settle_time_the_gate_decides_on_the_first_run(
    project: Path, settle: tuple[str, ...]
) -> None:
    code, output, _ = gate(project, 600, *settle)  # still warming whatever the start-up takes
    assert code == 1, output
    assert "waiting" not in output
    assert "synthetic gate: FAILED" in output
    assert (runs(project, "warming"), runs(project, "steady")) == (1, 1)


@pytest.mark.slow
def test_a_passing_gate_does_not_wait(project: Path) -> None:
    code, output, _ = gate(project, 0, "--settle", "1m")
    assert code == 0, output
    assert "waiting" not in output
    assert runs(project, "warming") == 1


def test_a_bad_settle_time_is_a_usage_error(project: Path) -> None:
    done = synthetic_cmd("gate", "--settle", "soon", cwd=project)
    assert done.returncode == 2
    assert "argument --settle: expected a duration like '90s'" in done.stderr
