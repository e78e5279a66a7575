"""A config and checks kept outside the repository, run from any working directory.

Every run is a real `synthetic` process whose working directory is an
unrelated directory (``somewhere``), never the repository or the config's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthetic.sandbox import Sandbox
from tests.support.cli_runs import REPO, load_results, synthetic_cmd

pytestmark = pytest.mark.slow  # a sandbox server and `synthetic` processes

# A team's checks: its conftest declares its own plugin (a module beside it).
TEAM_CONFTEST = 'pytest_plugins = ["team_fixtures"]\n'
TEAM_FIXTURES = """
import pytest

@pytest.fixture
def queues_path():
    return "/health/queues"
"""
TEAM_CHECKS = """
import pytest

@pytest.mark.metric("team.queues_status")
@pytest.mark.critical("!= 200")
def check_queues_answer(bff, queues_path):
    return bff.snapshot(queues_path).status_code

@pytest.mark.metric("team.always_warns")
@pytest.mark.warning("> 0")
def check_always_warns():
    return 1
"""
TEAM_IDS = {
    "checks/check_team.py::check_queues_answer": "ok",
    "checks/check_team.py::check_always_warns": "warning",
}
# A check that is critical on its first run only: for the settling gate.
FLAKY_CHECK = """
import pathlib, pytest

@pytest.mark.metric("team.warming_up")
@pytest.mark.critical("> 0")
def check_warming_up():
    runs = pathlib.Path(__file__).with_name("runs")
    first = not runs.exists()
    runs.write_text("ran")
    return 1 if first else 0
"""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox("healthy") as running:
        yield running


@pytest.fixture
def somewhere(tmp_path: Path) -> Path:
    """The working directory: unrelated to the config's. Both are inside a pytest
    project (``tmp_path``) whose settings would deselect every check."""
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -m unit\nmarkers = unit\n")
    directory = tmp_path / "somewhere"
    directory.mkdir()
    return directory


@pytest.fixture
def team(tmp_path: Path, sandbox: Sandbox) -> Path:
    """A team's config and checks (config-relative `checks`), with no pytest settings."""
    directory = tmp_path / "elsewhere" / "team"
    checks = directory / "checks"
    checks.mkdir(parents=True)
    (checks / "conftest.py").write_text(TEAM_CONFTEST)
    (checks / "team_fixtures.py").write_text(TEAM_FIXTURES)
    (checks / "check_team.py").write_text(TEAM_CHECKS)
    (directory / "synthetic.toml").write_text(
        f'checks = ["checks"]\n[environments.sandbox]\nbase_url = "{sandbox.url}"\n'
    )
    return directory / "synthetic.toml"


def config_args(how: str, config: Path) -> tuple[list[str], dict[str, str]]:
    if how == "--config":
        return ["--config", str(config)], {}
    return [], {"SYNTHETIC_CONFIG": str(config)}


def severities(results: dict[str, object]) -> dict[str, str]:
    checks = results["checks"]
    assert isinstance(checks, list)
    return {check["id"]: check["severity"] for check in checks}


@pytest.mark.parametrize("how", ["--config", "SYNTHETIC_CONFIG"])
def test_this_repositorys_checks_from_another_directory(
    how: str, tmp_path: Path, somewhere: Path, sandbox: Sandbox
) -> None:
    config = tmp_path / "elsewhere" / "synthetic.toml"
    config.parent.mkdir()
    config.write_text(
        f'checks = ["{REPO / "checks"}"]\n[environments.sandbox]\nbase_url = "{sandbox.url}"\n'
    )
    option, env = config_args(how, config)
    done = synthetic_cmd(
        "run", *option, "--env", "sandbox", "-k", "health_status or check_health_entry",
        cwd=somewhere, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # Ids as from the repository root; results where the README says: the working directory.
    assert severities(load_results(somewhere / "synthetic-results")) == {
        "checks/check_health.py::check_health_status": "ok",
        "checks/check_health.py::check_health_entry[database]": "ok",
        "checks/check_health.py::check_health_entry[cache]": "ok",
    }


def test_this_repositorys_own_config_from_another_directory(
    somewhere: Path, sandbox: Sandbox
) -> None:
    # pyproject.toml's [tool.synthetic] (checks = ["checks"], relative to it), in a demo.
    done = synthetic_cmd(
        "demo", "--config", str(REPO / "pyproject.toml"), "--no-services",
        "--results-dir", "out", "-k", "health_status", cwd=somewhere,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert severities(load_results(somewhere / "out")) == {
        "checks/check_health.py::check_health_status": "ok"
    }


@pytest.mark.parametrize("how", ["--config", "SYNTHETIC_CONFIG"])
def test_a_teams_checks_from_another_directory(how: str, team: Path, somewhere: Path) -> None:
    option, env = config_args(how, team)
    done = synthetic_cmd("run", *option, "--env", "sandbox", cwd=somewhere, env=env)
    assert done.returncode == 1, done.stdout + done.stderr  # WARNING: the worst result
    assert severities(load_results(somewhere / "synthetic-results")) == TEAM_IDS


def test_a_teams_checks_with_xdist_and_a_relative_results_dir(team: Path, somewhere: Path) -> None:
    done = synthetic_cmd(
        "run", "--config", str(team), "--results-dir", "out", "-n", "2", cwd=somewhere
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert severities(load_results(somewhere / "out")) == TEAM_IDS
    assert not (team.parent / "out").exists()


def test_a_path_on_the_command_line_replaces_the_configs_checks(
    team: Path, somewhere: Path
) -> None:
    check = team.parent / "checks" / "check_team.py"
    done = synthetic_cmd(
        "run", "--config", str(team), f"{check}::check_queues_answer", cwd=somewhere
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert severities(load_results(somewhere / "synthetic-results")) == {
        "checks/check_team.py::check_queues_answer": "ok"
    }


def test_list_shows_a_teams_checks_from_another_directory(team: Path, somewhere: Path) -> None:
    done = synthetic_cmd("list", "--config", str(team), "--json", cwd=somewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {entry["id"] for entry in json.loads(done.stdout)} == set(TEAM_IDS)


def test_gate_settles_a_teams_check_from_another_directory(team: Path, somewhere: Path) -> None:
    (team.parent / "checks" / "check_flaky.py").write_text(FLAKY_CHECK)
    done = synthetic_cmd(
        "gate", "--config", str(team), "--settle", "1m", "--settle-every", "1s",
        "-k", "warming_up", cwd=somewhere,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "synthetic gate: settled after" in done.stdout
    assert severities(load_results(somewhere / "synthetic-results")) == {
        "checks/check_flaky.py::check_warming_up": "ok"
    }


def test_pytest_settings_beside_the_config_apply(team: Path, somewhere: Path) -> None:
    (team.parent / "pytest.ini").write_text("[pytest]\naddopts = -k queues_answer\n")
    done = synthetic_cmd("run", "--config", str(team), cwd=somewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    assert severities(load_results(somewhere / "synthetic-results")) == {
        "checks/check_team.py::check_queues_answer": "ok"
    }
