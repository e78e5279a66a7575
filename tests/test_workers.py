"""The checks' workers are forks of the controller (`synthetic.workers`).

A worker is started by forking the controller, after pytest, the plugins, the
framework and the catalogue's conftest are imported, instead of a fresh
interpreter importing them all again. Each test below runs the `synthetic`
command as a user does and reads what the checks themselves saw.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from synthetic.__main__ import pauses
from tests.support.cli_runs import SYNTHETIC, load_results, synthetic_cmd

# Imported by the catalogue's conftest: each process that executes it logs its pid.
HELPER = """
import json
import os
import subprocess
from pathlib import Path
with open(Path(__file__).resolve().parent.parent / "imports.log", "a") as log:
    log.write(f"{os.getpid()}\\n")
"""

CONFTEST = "import warm_helper  # noqa: F401\n"

CHECKS = """
import contextlib, gc, os, signal, sys, pytest

KEEP = []

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

@pytest.mark.metric("worker.inherited")
@pytest.mark.critical("< 0")
def check_e_inherited():
    # What a fresh interpreter would not have: the command's arguments, its open files.
    import json, tempfile
    from pathlib import Path
    held = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            held[fd] = os.readlink(f"/proc/self/fd/{fd}")
    kept = tempfile.TemporaryDirectory(prefix="synthetic-worker-")  # removed at exit
    KEEP.append(kept)
    out = Path(__file__).resolve().parent.parent / "inherited.json"
    out.write_text(json.dumps({"argv": sys.argv, "fds": held, "tmp": kept.name}))
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


def test_a_worker_holds_nothing_a_fresh_interpreter_would_not(tmp_path: Path) -> None:
    project = _project(tmp_path)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    with subprocess.Popen(
        [*SYNTHETIC, "run", "--alerts", "off"],
        cwd=project,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as command:
        assert command.stdout is not None
        ours = f"pipe:[{os.fstat(command.stdout.fileno()).st_ino}]"
        output, _ = command.communicate(timeout=120)
    assert command.returncode == 0, output
    seen = json.loads((project / "inherited.json").read_text())
    assert seen["argv"] == ["-c"]  # not the command's arguments
    # Its stdin and stdout are the gateway's pipes, 2 the command's stderr; the
    # rest are its own (pytest's capture files): not the command's stdout.
    assert ours not in {target for fd, target in seen["fds"].items() if fd not in ("0", "1")}
    # Its exit functions ran as a fresh interpreter's would: a check's temporary
    # directory is removed when the worker ends.
    assert not Path(seen["tmp"]).exists()
