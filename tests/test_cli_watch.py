"""`synthetic watch`: rounds in fresh processes that never overlap, stopped cleanly."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli_runs import SYNTHETIC, load_results, synthetic_cmd

# Each round appends "start end" to rounds.txt; the round number picks the
# value (OK, CRITICAL, WARNING: the last round's code is 1, the worst's 2) and
# how long the round lasts. Hypothesis is not loaded: its import is most of a
# round's start-up, which the timings below must stay well under.
NO_HYPOTHESIS = ("-p", "no:hypothesispytest")
ROUND_CHECKS = """
import os, pathlib, time, pytest

STATE = pathlib.Path(os.environ["STATE_DIR"])
VALUES = {1: 0, 2: 60, 3: 20}
SLEEP = {1: float(os.environ.get("FIRST_ROUND_S", "0"))}

@pytest.mark.metric("queue")
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_queue():
    start = time.time()
    rounds = STATE / "rounds.txt"
    number = len(rounds.read_text().splitlines()) + 1 if rounds.exists() else 1
    time.sleep(SLEEP.get(number, 0))
    with open(rounds, "a") as out:
        out.write(f"{start} {time.time()}\\n")
    return VALUES[number]
"""

SLOW_CHECK = """
import os, pathlib, time, pytest

@pytest.mark.critical("> 5")
def check_slow():
    (pathlib.Path(os.environ["STATE_DIR"]) / "pid").write_text(str(os.getpid()))
    time.sleep(30)
    return 1
"""

# A rate check: the first run only records a baseline (and skips); later runs
# measure the growth since the previous one, which only the state store knows.
RATE_CHECK = """
import os, pathlib, pytest

@pytest.mark.metric("hits")
@pytest.mark.critical("> 5")
def check_hits(samples):
    counter = pathlib.Path(os.environ["STATE_DIR"]) / "counter"
    total = len(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text("x" * total)
    increase = samples.increase("hits", total)
    if increase is None:
        pytest.skip("first run: baseline")
    return increase
"""


def make_project(root: Path, checks: str) -> Path:
    (root / "checks").mkdir()
    (root / "checks" / "check_project.py").write_text(checks)
    (root / "synthetic.toml").write_text('[environments.sandbox]\nbase_url = "http://x"\n')
    return root


def round_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("synthetic watch: round ")]


@pytest.mark.slow
def test_rounds_never_overlap_and_the_last_one_decides(tmp_path: Path) -> None:
    project = make_project(tmp_path, ROUND_CHECKS)
    # --every well above a round's start-up (a process, its worker: a few seconds).
    # --every 10s: well above a round's start-up even on a loaded machine (7.5 s seen
    # with a load of 4 on 2 cores), so "at once" and "--every later" stay apart.
    env = {"STATE_DIR": str(project), "FIRST_ROUND_S": "11"}  # longer than --every
    done = synthetic_cmd(
        "watch", "--every", "10s", "--rounds", "3", *NO_HYPOTHESIS, cwd=project, env=env
    )
    assert done.returncode == 1, done.stdout + done.stderr  # round 3: WARNING
    lines = round_lines(done.stdout)
    assert len(lines) == 3, done.stdout
    assert lines[0].startswith("synthetic watch: round 1: OK in ")
    assert lines[1].startswith("synthetic watch: round 2: CRITICAL in ")
    assert lines[1].endswith("(1 critical)")
    assert lines[2].startswith("synthetic watch: round 3: WARNING in ")
    spans = [
        tuple(map(float, line.split()))
        for line in (project / "rounds.txt").read_text().splitlines()
    ]
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end < start  # disjoint: a round starts after the previous one ended
    # Round 1 took longer than --every: round 2 followed at once (process start-up only),
    # not --every after round 1 ended.
    assert spans[1][0] - spans[0][1] < 10
    # Round 2 was short: round 3 started --every after round 2 started.
    assert 9 <= spans[2][0] - spans[1][0] <= 14


@pytest.mark.slow
def test_sigterm_stops_the_watch_and_its_round(tmp_path: Path) -> None:
    project = make_project(tmp_path, SLOW_CHECK)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    watcher = subprocess.Popen(
        [*SYNTHETIC, "watch", "--every", "1s", *NO_HYPOTHESIS],
        cwd=project,
        env={**environ, "STATE_DIR": str(project)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        pid_file = project / "pid"
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the round never started"
            assert watcher.poll() is None, watcher.communicate()
            time.sleep(0.05)
        child = int(pid_file.read_text())
        stopped_at = time.monotonic()
        watcher.send_signal(signal.SIGTERM)
        stdout, stderr = watcher.communicate(timeout=10)
        assert time.monotonic() - stopped_at < 4  # interrupted, not left to the kill after GRACE_S
        assert watcher.returncode == 0, stdout + stderr  # no round finished
        assert "synthetic watch: round 1: stopped after " in stdout
        assert "synthetic watch: stopped by SIGTERM" in stdout
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)  # gone, and reaped: no orphan left running the check
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate(timeout=5)


@pytest.mark.slow
def test_state_is_carried_from_round_to_round(tmp_path: Path) -> None:
    project = make_project(tmp_path, RATE_CHECK)
    done = synthetic_cmd(
        "watch", "--every", "0s", "--rounds", "2", *NO_HYPOTHESIS, cwd=project,
        env={"STATE_DIR": str(project)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = round_lines(done.stdout)
    assert lines[0].endswith("(1 skipped)"), lines  # the baseline
    assert lines[1].startswith("synthetic watch: round 2: OK in "), lines
    (check,) = load_results(project / "synthetic-results")["checks"]
    assert (check["severity"], check["value"]) == ("ok", 1.0)


def test_no_round_is_exit_0_and_bad_options_are_usage_errors(tmp_path: Path) -> None:
    done = synthetic_cmd("watch", "--rounds", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert "--rounds: expected a whole number of at least 1" in done.stderr
    done = synthetic_cmd("watch", "--every", "often", cwd=tmp_path)
    assert done.returncode == 2
    assert "--every: expected a duration" in done.stderr
