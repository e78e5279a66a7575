"""One run where every check hangs, each in its own way, ends within its deadline.

The target accepts connections and never answers; the checks sleep, spin in
a loop that swallows the stop, wait on the target, and wait on a thread that
never ends. The run's deadline (`run_timeout_s`) cuts it; results.json lists
every check, those it cut UNKNOWN "run deadline".
"""

from __future__ import annotations

import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.cli_runs import load_results, synthetic_cmd
from tests.support.hanging import silent_port

RUN_TIMEOUT_S = 14.0
# The command's own start (imports, before the run's clock starts) and exit.
PROCESS_S = 15.0

HANGING = """
import threading, time, pytest

@pytest.mark.critical("> 5")
def check_sleeps():
    time.sleep(3600)

@pytest.mark.critical("> 5")
def check_reads_a_silent_target(bff):
    return bff.get("/health").status_code

@pytest.mark.critical("> 5")
def check_joins_a_thread_that_never_ends():
    thread = threading.Thread(target=lambda: time.sleep(3600))  # not a daemon
    thread.start()
    thread.join()

@pytest.mark.critical("> 5")
def check_spins_and_swallows_the_stop():
    while True:
        try:
            sum(range(1000))
        except:  # noqa: E722
            pass

@pytest.mark.parametrize("n", range(8))
@pytest.mark.critical("> 5")
def check_waits_on_the_target_again(bff, n):
    return bff.get(f"/slow/{n}").status_code
"""


@pytest.mark.slow
def test_a_run_where_every_check_hangs_ends_within_its_deadline(tmp_path: Path) -> None:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "check_hanging.py").write_text(HANGING)
    with silent_port() as port:
        (tmp_path / "synthetic.toml").write_text(
            textwrap.dedent(
                f"""
                [environments.sandbox]
                base_url = "http://127.0.0.1:{port}"
                timeout_s = 60
                retries = 0
                check_timeout_s = 1.5
                run_timeout_s = {RUN_TIMEOUT_S}
                """
            )
        )
        started = time.monotonic()
        done = synthetic_cmd(
            "run", "-p", "no:randomly", cwd=tmp_path, timeout=RUN_TIMEOUT_S + 2 + PROCESS_S
        )
        elapsed = time.monotonic() - started
    # CRITICAL: the target did not answer (an incomplete run is at least UNKNOWN).
    assert done.returncode == 2, done.stdout + done.stderr
    document = load_results(tmp_path / "synthetic-results")
    # The run's own clock: from its start to its verdict, within the deadline plus 2 s.
    span = datetime.fromisoformat(document["finished_at"]) - datetime.fromisoformat(
        document["started_at"]
    )
    assert span.total_seconds() <= RUN_TIMEOUT_S + 2, span
    assert elapsed <= RUN_TIMEOUT_S + 2 + PROCESS_S
    found = {c["id"].split("::", 1)[1]: c for c in document["checks"]}
    assert len(found) == 12  # every check collected has a result
    # The first three run before the deadline, even on a slow machine; the one
    # that does not stop may be cut by it, and the deadline cuts the rest.
    own = {
        "check_sleeps": "sleeps: the check ran past its deadline (1.5 s) while not waiting on "
        "the target; stopped",
        "check_reads_a_silent_target": "reads_a_silent_target: unreachable: no answer from "
        "GET /health within the check's time limit (1.5 s)",
        "check_joins_a_thread_that_never_ends": "joins_a_thread_that_never_ends: the check ran "
        "past its deadline (1.5 s) while not waiting on the target; stopped",
    }
    for name, reason in own.items():
        assert found[name]["reason"] == reason
    assert (found["check_reads_a_silent_target"]["severity"], found["check_reads_a_silent_target"][
        "unreachable"]) == ("critical", "bff")  # fmt: skip
    spins = found["check_spins_and_swallows_the_stop"]["reason"]
    assert spins in (
        "spins_and_swallows_the_stop: the check ran past its deadline (1.5 s) and did not stop; "
        "its worker was stopped",
        "spins_and_swallows_the_stop: run deadline: not finished within the run's 14 s "
        "(run_timeout_s)",
    )
    cut = [c for c in document["checks"] if ": run deadline: " in c["reason"]]
    assert cut, "the deadline cut nothing: make the checks hang longer"
    for check in cut:
        assert check["severity"] == "unknown"
        assert check["reason"].endswith(f"within the run's {RUN_TIMEOUT_S:g} s (run_timeout_s)")
    assert document["complete"] is False
    assert any(error.startswith("run deadline: ") for error in document["errors"])
