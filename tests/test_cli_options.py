"""Every subcommand resolves --env, --config and --results-dir one way: the command
line, else SYNTHETIC_ENV / SYNTHETIC_CONFIG / SYNTHETIC_RESULTS_DIR, else the ini
keys of the pytest settings beside the config. `alerts` and `silence` start no
pytest, and used to read only their own flags."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthetic.errors import ConfigError
from synthetic.options import BY_DEST, read_ini, resolve_outside_pytest

CONFIG = """\
default_environment = "sandbox"
[environments.sandbox]
base_url = "http://127.0.0.1:9"
[environments.staging]
base_url = "http://127.0.0.1:9"
[alerts.receivers.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
"""


def synthetic(cwd: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    env.update(environ)
    return subprocess.run(
        [sys.executable, "-m", "synthetic", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def silences(cwd: Path, **environ: str) -> list[str]:
    done = synthetic(cwd, "silence", "list", "--json", **environ)
    assert done.returncode == 0, done.stderr
    return [s["matchers"]["metric"][0] for s in json.loads(done.stdout)]


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, Path]:
    """A config in one directory, and a working directory somewhere else."""
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "synthetic.toml").write_text(CONFIG)
    (tmp_path / "cwd").mkdir()
    return tmp_path / "team" / "synthetic.toml", tmp_path / "cwd"


@pytest.mark.slow
def test_silence_honours_synthetic_env_and_config(elsewhere: tuple[Path, Path]) -> None:
    config, cwd = elsewhere
    environ = {"SYNTHETIC_CONFIG": str(config), "SYNTHETIC_RESULTS_DIR": str(cwd / "out")}
    added = synthetic(
        cwd, "silence", "add", "--metric", "x.*", "--for", "1h", SYNTHETIC_ENV="staging", **environ
    )
    assert added.returncode == 0, added.stderr
    assert silences(cwd, SYNTHETIC_ENV="staging", **environ) == ["x.*"]
    assert silences(cwd, **environ) == []  # the sandbox's store is another
    assert (cwd / "out" / "alerts-staging.json").exists()
    listed = synthetic(cwd, "silence", "list", "--json", SYNTHETIC_ENV="staging", **environ)
    (silence_id,) = [s["id"] for s in json.loads(listed.stdout)]
    removed = synthetic(cwd, "silence", "remove", silence_id, SYNTHETIC_ENV="staging", **environ)
    assert removed.returncode == 0, removed.stderr
    assert silences(cwd, SYNTHETIC_ENV="staging", **environ) == []


@pytest.mark.slow
def test_alerts_outbox_and_test_honour_synthetic_env_and_config(
    elsewhere: tuple[Path, Path],
) -> None:
    config, cwd = elsewhere
    environ = {"SYNTHETIC_CONFIG": str(config), "SYNTHETIC_RESULTS_DIR": str(cwd / "out")}
    outbox = synthetic(cwd, "alerts", "outbox", SYNTHETIC_ENV="staging", **environ)
    assert outbox.returncode == 0, outbox.stderr
    assert "alerts-staging.json" in outbox.stdout
    # The receiver refuses (port 9): what matters is that the staging config was used.
    sent = synthetic(
        cwd, "alerts", "test", "--receiver", "hook", SYNTHETIC_ENV="nowhere", **environ
    )
    assert sent.returncode == 2
    assert "environment 'nowhere' is not defined (defined: sandbox, staging)" in sent.stderr


@pytest.mark.slow
def test_the_ini_beside_the_config_is_read_and_the_command_line_wins(
    elsewhere: tuple[Path, Path],
) -> None:
    config, cwd = elsewhere
    (config.parent / "pytest.ini").write_text(
        f"[pytest]\nsynthetic_env = staging\nsynthetic_results_dir = {cwd / 'ini-out'}\n"
    )
    done = synthetic(cwd, "silence", "add", "--metric", "y", "--for", "1h", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (cwd / "ini-out" / "alerts-staging.json").exists()
    flag = synthetic(
        cwd, "silence", "add", "--metric", "z", "--for", "1h", "--config", str(config),
        "--env", "sandbox", SYNTHETIC_ENV="staging",
    )  # fmt: skip
    assert flag.returncode == 0, flag.stderr
    assert (cwd / "ini-out" / "alerts-sandbox.json").exists()


def test_a_bad_value_names_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^SYNTHETIC_ALERTS: 'sned' is not one of off, dry-run"):
        resolve_outside_pytest({}, environ={"SYNTHETIC_ALERTS": "sned"}, cwd=tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\nsynthetic_fail_on = sometimes\n")
    with pytest.raises(ConfigError, match=r"^ini synthetic_fail_on: 'sometimes' is not one of"):
        resolve_outside_pytest({}, environ={}, cwd=tmp_path)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pytest.ini", "[pytest]\nsynthetic_env = staging\n"),
        ("pyproject.toml", '[tool.pytest.ini_options]\nsynthetic_env = "staging"\n'),
        ("pytest.toml", '[pytest]\nsynthetic_env = "staging"\n'),
    ],
)
def test_ini_keys_are_read_from_each_kind_of_settings_file(
    tmp_path: Path, name: str, text: str
) -> None:
    (tmp_path / name).write_text(text)
    assert read_ini(tmp_path / name, "synthetic_env") == "staging"
    assert resolve_outside_pytest({}, environ={}, cwd=tmp_path)["synthetic_env"] == "staging"


def test_the_help_of_a_flag_is_the_options_help() -> None:
    done = synthetic(Path.cwd(), "silence", "list", "--help")
    flat = " ".join(done.stdout.split())
    assert " ".join(BY_DEST["synthetic_env"].described.split()) in flat
