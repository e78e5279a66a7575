"""A run cannot turn green by dying, and ends within its deadline whatever its checks do.

The checks here misbehave on purpose: they end their own process, swallow
the stop, leak threads, loop, or wait on a target that never answers. The
command runs them as a user runs it (a real process, real exit codes);
in-process pytester runs cover what does not end a process.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthetic import waits
from synthetic.deadline import default_run_timeout
from tests.support.cli_runs import load_results, synthetic_cmd
from tests.support.hanging import silent_port

# A bound far above what a run here takes, far below what it took before
# (a hung run, or one held by a thread sleeping 10 minutes).
BOUND_S = 60.0


@pytest.fixture
def silent() -> Iterator[int]:
    with silent_port() as port:
        yield port


def project(tmp_path: Path, checks: str, *, settings: str = "", port: int = 9) -> Path:
    (tmp_path / "checks").mkdir(exist_ok=True)
    (tmp_path / "checks" / "check_project.py").write_text(textwrap.dedent(checks))
    (tmp_path / "synthetic.toml").write_text(
        f'[environments.sandbox]\nbase_url = "http://127.0.0.1:{port}"\ntimeout_s = 30\n'
        + textwrap.dedent(settings)
    )
    return tmp_path


def by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"].split("::", 1)[1]: c for c in document["checks"]}


def timed(*args: str, cwd: Path, **options: Any) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = synthetic_cmd(*args, cwd=cwd, timeout=BOUND_S, **options)
    return done, time.monotonic() - started


# -- a check that ends its process ---------------------------------------------------------------

EXITING = """
import os, pytest

@pytest.mark.critical("> 5")
def check_first():
    return 1

@pytest.mark.critical("> 5")
def check_exits():
    os._exit(0)

@pytest.mark.critical("> 5")
def check_last():
    return 1
"""


@pytest.mark.slow
def test_a_check_that_exits_its_process_cannot_end_the_run_green(tmp_path: Path) -> None:
    root = project(tmp_path, EXITING)
    done = synthetic_cmd("run", "-p", "no:randomly", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    document = load_results(root / "synthetic-results")
    found = by_name(document)
    assert found["check_exits"]["severity"] == "unknown"
    assert "ended its worker process" in found["check_exits"]["reason"]
    # The checks after it ran, on a fresh worker.
    assert found["check_first"]["severity"] == found["check_last"]["severity"] == "ok"
    assert document["complete"] is False
    assert any("check_exits" in error for error in document["errors"])


@pytest.mark.slow
def test_a_gate_and_a_watch_round_do_not_pass_a_check_that_exits(tmp_path: Path) -> None:
    root = project(tmp_path, EXITING)
    assert synthetic_cmd("gate", cwd=root).returncode == 1
    done = synthetic_cmd("watch", "--rounds", "1", "--every", "0s", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "round 1: UNKNOWN" in done.stdout


@pytest.mark.slow
def test_without_workers_a_dead_run_is_unknown_not_ok(tmp_path: Path) -> None:
    root = project(tmp_path, EXITING)
    done = synthetic_cmd("run", "-n", "0", "-p", "no:randomly", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "synthetic: no result: the run's process ended" in done.stderr
    nagios = synthetic_cmd("run", "-n", "0", "--format", "nagios", cwd=root)
    assert nagios.returncode == 3
    assert nagios.stdout.startswith("SYNTHETIC UNKNOWN - no result")


@pytest.mark.slow
def test_the_command_decides_even_when_pytest_dies_under_it(tmp_path: Path) -> None:
    root = project(tmp_path, "import pytest\n@pytest.mark.critical('> 5')\ndef check_a():\n"
                   "    return 1\n")  # fmt: skip
    # A hook of the controller's that ends its process before any verdict.
    (root / "checks" / "conftest.py").write_text(
        "import os\n"
        "def pytest_sessionstart(session):\n"
        "    if not hasattr(session.config, 'workerinput'):\n"
        "        os._exit(0)\n"
    )
    done = synthetic_cmd("run", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no result" in done.stderr
    assert synthetic_cmd("gate", "--fail-on", "never", cwd=root).returncode == 1
    # After the verdict, the process's fate no longer matters.
    (root / "checks" / "conftest.py").write_text(
        "import os\ndef pytest_unconfigure(config):\n    os._exit(0)\n"
    )
    (root / "checks" / "check_project.py").write_text(
        "import pytest\n@pytest.mark.critical('> 5')\ndef check_a():\n    return 9\n"
    )
    assert synthetic_cmd("run", cwd=root).returncode == 2


# -- a check that swallows the stop, leaks a thread ----------------------------------------------

SWALLOWING = """
import time, pytest

@pytest.mark.critical("> 5")
def check_swallows():
    while True:
        try:
            time.sleep(0.05)
        except:  # noqa: E722 - the point: it catches the stop too
            pass

@pytest.mark.critical("> 5")
def check_after():
    return 1
"""


@pytest.mark.slow
def test_a_loop_that_swallows_the_stop_is_stopped_and_the_run_goes_on(tmp_path: Path) -> None:
    root = project(tmp_path, SWALLOWING, settings="check_timeout_s = 1\n")
    done, _ = timed("run", "-p", "no:randomly", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    document = load_results(root / "synthetic-results")
    found = by_name(document)
    assert found["check_swallows"]["severity"] == "unknown"
    assert found["check_swallows"]["reason"] == (
        "swallows: the check ran past its deadline (1 s) and did not stop; its worker was stopped"
    )
    assert found["check_after"]["severity"] == "ok"
    assert document["complete"] is True


@pytest.mark.slow
def test_code_that_never_returns_to_python_is_stopped_from_outside(tmp_path: Path) -> None:
    # sum() over a range runs in C holding the interpreter: no signal handler
    # and no thread of the check's process runs until it returns (in hours).
    root = project(
        tmp_path,
        """
        import pytest
        from synthetic import waits

        @pytest.mark.critical("> 5")
        def check_in_c():
            return sum(range(10**13))

        @pytest.mark.critical("> 5")
        def check_in_c_waiting():
            with waits.waiting_on("http", "GET /slow"):  # as a client of the target would
                return sum(range(10**13))

        @pytest.mark.critical("> 5")
        def check_after():
            return 1
        """,
        settings="check_timeout_s = 1\n",
    )
    done, _ = timed("run", "-p", "no:randomly", cwd=root)
    assert done.returncode == 2, done.stdout + done.stderr
    found = by_name(load_results(root / "synthetic-results"))
    assert found["check_in_c"]["reason"] == (
        "in_c: the check ran past its deadline (1 s) and did not stop; its worker was stopped"
    )
    waiting = found["check_in_c_waiting"]
    assert (waiting["severity"], waiting["unreachable"]) == ("critical", "bff")
    assert waiting["reason"] == (
        "in_c_waiting: unreachable: no answer from GET /slow within the check's time limit "
        "(1 s); the check did not stop, so its worker was stopped"
    )
    assert found["check_after"]["severity"] == "ok"


@pytest.mark.slow
def test_without_workers_the_watchdog_still_leaves_a_verdict(tmp_path: Path) -> None:
    root = project(tmp_path, SWALLOWING, settings="check_timeout_s = 1\n")
    done, _ = timed("run", "-n", "0", "-p", "no:randomly", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    found = by_name(load_results(root / "synthetic-results"))
    assert found["check_swallows"]["reason"] == (
        "swallows: the check ran past its deadline (1 s) and did not stop; the run was stopped"
    )
    assert found["check_after"]["severity"] == "unknown"
    assert found["check_after"]["reason"].startswith("after: not run: the run was stopped")


@pytest.mark.slow
def test_a_leaked_thread_does_not_hold_the_run(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        import threading, time, pytest

        @pytest.mark.critical("> 5")
        def check_leaks():
            threading.Thread(target=time.sleep, args=(600,)).start()  # not a daemon
            return 1
        """,
    )
    for workers in ("1", "0", "2"):
        done, _ = timed("run", "-n", workers, cwd=root)
        assert done.returncode == 0, done.stdout + done.stderr


# -- blame: the target's slowness or the check's own ---------------------------------------------


@pytest.fixture
def blamed(pytester: pytest.Pytester, silent: int) -> pytest.Pytester:
    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\n")
    pytester.makefile(
        ".toml",
        synthetic=f"""
        [environments.sandbox]
        base_url = "http://127.0.0.1:{silent}"
        redis_url = "redis://127.0.0.1:{silent}/0"
        postgres_dsn = "postgresql://monitor@127.0.0.1:{silent}/portal"
        timeout_s = 30
        retries = 0
        check_timeout_s = 0.5
        """,
    )
    return pytester


BLAME = """
import time, pytest

@pytest.mark.critical("> 5")
def check_waits_on_http(bff):
    return bff.get("/health").status_code

@pytest.mark.critical("> 5")
def check_waits_on_redis(redis_client):
    return redis_client.dbsize()

@pytest.mark.critical("> 5")
def check_waits_on_postgres(postgres):
    return postgres.execute("select 1").fetchone()[0]

@pytest.mark.critical("> 5")
def check_sleeps():
    time.sleep(30)

@pytest.mark.critical("> 5")
def check_loops():
    n = 0
    while True:
        n += 1
"""


@pytest.mark.slow
def test_a_timeout_while_waiting_on_the_target_is_unreachable_any_other_is_unknown(
    blamed: pytest.Pytester,
) -> None:
    blamed.makepyfile(check_blame=BLAME)
    blamed.runpytest("-p", "no:randomly")
    document = json.loads((blamed.path / "synthetic-results" / "results.json").read_text())
    found = by_name(document)
    for name, via, what in (
        ("check_waits_on_http", "bff", "GET /health"),
        ("check_waits_on_redis", "redis", "redis"),
        ("check_waits_on_postgres", "postgres", "postgres"),
    ):
        assert found[name]["severity"] == "critical", found[name]
        assert found[name]["unreachable"] == via
        short = name.removeprefix("check_")
        assert found[name]["reason"].startswith(f"{short}: unreachable: no answer from {what}")
        assert found[name]["reason"].endswith("within the check's time limit (0.5 s)")
    for name in ("check_sleeps", "check_loops"):
        assert found[name]["severity"] == "unknown"
        assert found[name]["unreachable"] is None
        assert found[name]["reason"] == (
            f"{name.removeprefix('check_')}: the check ran past its deadline (0.5 s) "
            "while not waiting on the target; stopped"
        )


@pytest.mark.slow
def test_a_check_stopped_while_waiting_in_its_own_threads_blames_the_target(
    blamed: pytest.Pytester,
) -> None:
    blamed.makepyfile(
        check_burst="""
        import pytest
        from concurrent.futures import ThreadPoolExecutor

        @pytest.mark.critical("> 5")
        def check_burst(bff):
            with ThreadPoolExecutor(4) as pool:
                return max(pool.map(lambda _: bff.get("/p95").status_code, range(4)))
        """
    )
    blamed.runpytest_subprocess()
    found = by_name(json.loads((blamed.path / "synthetic-results" / "results.json").read_text()))
    assert found["check_burst"]["severity"] == "critical"
    assert found["check_burst"]["reason"].startswith("burst: unreachable: no answer from GET /p95")


@pytest.mark.slow
def test_plain_pytest_keeps_its_results_identical_serial_and_parallel(
    blamed: pytest.Pytester,
) -> None:
    blamed.makepyfile(check_blame=BLAME)
    blamed.runpytest_subprocess("-p", "no:randomly")
    serial = load_results(blamed.path / "synthetic-results")
    blamed.runpytest_subprocess("-p", "no:randomly", "-n", "2")
    parallel = load_results(blamed.path / "synthetic-results")

    def outcome(document: dict[str, Any]) -> dict[str, tuple[str, str, str | None]]:
        return {c["id"]: (c["severity"], c["reason"], c["unreachable"]) for c in document["checks"]}

    assert outcome(parallel) == outcome(serial)


# -- the run's deadline, and the last resort ------------------------------------------------------


@pytest.mark.slow
def test_without_workers_the_run_deadline_stops_the_check_under_way(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        import time, pytest

        @pytest.mark.critical("> 5")
        def check_first():
            return 1

        @pytest.mark.critical("> 5")
        def check_slow():
            time.sleep(60)

        @pytest.mark.critical("> 5")
        def check_last():
            return 1
        """,
        settings="check_timeout_s = 50\nrun_timeout_s = 3\n",
    )
    done, _ = timed("run", "-n", "0", "-p", "no:randomly", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    document = load_results(root / "synthetic-results")
    found = by_name(document)
    assert found["check_first"]["severity"] == "ok"
    assert found["check_slow"]["reason"] == (
        "slow: run deadline: not finished within the run's 3 s (run_timeout_s)"
    )
    assert found["check_last"]["reason"] == (
        "last: run deadline: not started within the run's 3 s (run_timeout_s)"
    )
    assert document["errors"] == [
        "run deadline: the run's 3 s (run_timeout_s) ran out with 1 check(s) not done"
    ]


@pytest.mark.slow
def test_a_controller_that_hangs_is_abandoned_with_a_verdict(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        """
        import pytest

        @pytest.mark.critical("> 5")
        def check_first():
            return 1

        @pytest.mark.critical("> 5")
        def check_hang():
            return 1

        @pytest.mark.critical("> 5")
        def check_last():
            return 1
        """,
        settings="run_timeout_s = 4\n",
    )
    # A hook of the controller's (not a check) that never returns.
    (root / "checks" / "conftest.py").write_text(
        "import time\n"
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call' and report.nodeid.endswith('check_hang'):\n"
        "        time.sleep(3600)\n"
    )
    done, _ = timed("run", "-p", "no:randomly", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    document = load_results(root / "synthetic-results")
    found = by_name(document)
    assert found["check_first"]["severity"] == found["check_hang"]["severity"] == "ok"
    # Its report waits behind the hung hook: the run's deadline came first.
    assert found["check_last"]["severity"] == "unknown"
    assert ": run deadline: " in found["check_last"]["reason"]
    assert any(
        error.startswith("the run was stopped: run deadline") for error in document["errors"]
    )


@pytest.mark.slow
def test_a_deadline_before_any_check_was_collected_is_not_green(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "import time\ntime.sleep(3600)  # collecting this module never ends\n",
        settings="run_timeout_s = 3\n",
    )
    done, _ = timed("run", cwd=root)
    assert done.returncode == 3, done.stdout + done.stderr
    document = load_results(root / "synthetic-results")
    assert (document["worst"], document["checks"]) == ("unknown", [])
    assert document["errors"] == [
        "run deadline: the run's 3 s (run_timeout_s) ran out before any check was collected"
    ]


def test_the_default_run_deadline_allows_every_check_its_whole_limit() -> None:
    # 30 s to start, then each check's limit plus 3 s, over the workers, plus the longest.
    assert default_run_timeout([60.0] * 27, 1) == 1794.0
    assert default_run_timeout([60.0] * 27, 2) == 943.5
    assert default_run_timeout([10.0, 1.0], 1) == 30 + 13 + 4 + 13
    assert default_run_timeout([], 4) == 30


def test_what_a_check_waits_on_names_no_secret() -> None:
    waits.running("checks/check_a.py::check_a")
    try:
        with waits.waiting_on("http", "GET https://user:s3cret@bff.example:8443/x?token=s3cret"):
            assert waits.current() == waits.Wait(
                "http", "GET https://bff.example:8443/x", "checks/check_a.py::check_a"
            )
        assert waits.current() is None
    finally:
        waits.running(None)
