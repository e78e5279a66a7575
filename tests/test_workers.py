"""The checks' workers are forks of the controller (`synthetic.workers`).

A worker is started by forking the controller, after pytest, the plugins, the
framework and the catalogue's conftest are imported, instead of a fresh
interpreter importing them all again. Each test below runs the `synthetic`
command as a user does and reads what the checks themselves saw.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthetic.__main__ import pauses
from tests.support.cli_runs import load_results, synthetic_cmd

# Imported by the catalogue's conftest: each process that executes it logs its pid.
HELPER = """
import os
from pathlib import Path
with open(Path(__file__).resolve().parent.parent / "imports.log", "a") as log:
    log.write(f"{os.getpid()}\\n")
"""

CONFTEST = "import warm_helper  # noqa: F401\n"

CHECKS = """
import gc, os, signal, pytest

@pytest.mark.metric("worker.collector")
@pytest.mark.critical("== 0")
def check_0_collector():
    return int(gc.isenabled())

@pytest.mark.metric("worker.frozen")
@pytest.mark.critical("< 0")
def check_0_frozen():
    return gc.get_freeze_count()

@pytest.mark.metric("worker.parent")
@pytest.mark.critical("< 0")
def check_a_parent():
    return os.getppid()

@pytest.mark.metric("worker.pid")
@pytest.mark.critical("< 0")
def check_b_pid():
    return os.getpid()

@pytest.mark.metric("worker.crash")
@pytest.mark.critical("< 0")
def check_c_crash():
    if os.environ.get("CRASH"):
        os.kill(os.getpid(), signal.SIGKILL)
    return 0

@pytest.mark.metric("worker.after")
@pytest.mark.critical("< 0")
def check_d_after():
    return os.getppid()
"""


def _project(tmp_path: Path) -> Path:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "warm_helper.py").write_text(HELPER)
    (checks / "conftest.py").write_text(CONFTEST)
    (checks / "check_worker.py").write_text(CHECKS)
    (tmp_path / "synthetic.toml").write_text('[environments.sandbox]\nbase_url = "http://x"\n')
    return tmp_path


def _values(project: Path) -> dict[str, object]:
    results = load_results(project / "synthetic-results")
    return {check["metric"]: check for check in results["checks"]}


def test_a_worker_starts_from_what_the_controller_imported(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = synthetic_cmd("run", "--alerts", "off", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    imported = (project / "imports.log").read_text().split()
    assert len(imported) == 1, imported  # the conftest's imports ran once, in the controller
    checks = _values(project)
    controller = int(imported[0])
    assert checks["worker.parent"]["value"] == controller  # type: ignore[index]
    assert checks["worker.pid"]["value"] != controller  # type: ignore[index]


def test_the_checks_run_with_the_collector_on(tmp_path: Path) -> None:
    # The command pauses the cyclic garbage collector for its start and freezes
    # what the start built (`synthetic.__main__`); the checks' garbage is collected.
    project = _project(tmp_path)
    done = synthetic_cmd("run", "--alerts", "off", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = _values(project)
    assert checks["worker.collector"]["value"] == 1  # type: ignore[index]
    assert checks["worker.frozen"]["value"] > 10_000  # type: ignore[index]


def test_two_workers_are_both_forks_and_the_run_ends(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = synthetic_cmd("run", "--alerts", "off", "-n", "2", "--dist", "each", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len((project / "imports.log").read_text().split()) == 1


def test_a_worker_that_dies_is_replaced_by_a_fork_and_the_rest_runs(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = synthetic_cmd("run", "--alerts", "off", cwd=project, env={"CRASH": "1"})
    checks = _values(project)
    assert checks["worker.crash"]["severity"] == "unknown"  # type: ignore[index]
    # The check after it ran, in a new worker forked from the same controller.
    controller = int((project / "imports.log").read_text().split()[0])
    assert checks["worker.after"]["severity"] == "ok", done.stdout  # type: ignore[index]
    assert checks["worker.after"]["value"] == controller  # type: ignore[index]
    assert len((project / "imports.log").read_text().split()) == 1
    assert checks["worker.pid"]["value"] != os.getpid()  # type: ignore[index]


def test_only_the_commands_that_run_once_pause_the_collector() -> None:
    # A long-lived command (a status page, rounds, the sandbox) collects from the start.
    for argv in (["run", "--env", "staging"], ["gate"], ["demo"], ["list", "--json"]):
        assert pauses(argv), argv
    for argv in (["serve"], ["watch", "--every", "1m"], ["sandbox"], ["alerts", "outbox"], []):
        assert not pauses(argv), argv
    assert not pauses(["--help"])
