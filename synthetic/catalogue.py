"""Where the ``synthetic`` command points pytest: the config's checks, with the
rootdir, pytest settings file and conftest boundary that go with them.

All of it follows from the config file and its `checks`, never from the
working directory, so ``synthetic run --config /elsewhere/synthetic.toml``
behaves the same wherever it is started:

- the checks directories are pytest's initial paths, so their ``conftest.py``
  files load before the session is configured (pytest accepts
  ``pytest_plugins`` only in those); the plugin drops them again when the
  command line names a path of its own (`synthetic.plugin`);
- the rootdir is the directory holding the checks directories, so check ids
  read ``checks/check_health.py::check_health_status`` from anywhere;
- pytest's settings are those of the config file's directory (a ``pytest.ini``,
  ``pytest.toml``, or ``pyproject.toml`` with ``[tool.pytest]``, as pytest picks
  them), else none: a ``pytest.ini`` around the working directory does not apply.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from synthetic.config import configured_checks, locate_config
from synthetic.errors import ConfigError
from synthetic.options import parse_toml

# pytest's own settings files, in its order of precedence (pyproject.toml counts
# only with a [tool.pytest] table).
PYTEST_SETTINGS_FILES = ("pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini")


@dataclass(frozen=True)
class Catalogue:
    """The pytest command line that collects a config's checks."""

    config: Path | None  # None: no config file, the built-in defaults
    checks: tuple[Path, ...]  # the configured directories that exist
    settings: Path | None = None  # pytest's settings file beside the config, if any

    def options(self) -> list[str]:
        if self.config is None:
            return []  # nothing to anchor to: pytest's own rules, from the working directory
        rootdir = _rootdir(self.config, self.checks)
        return [
            f"--synthetic-config={self.config}",
            f"--rootdir={rootdir}",
            # os.devnull without one: pytest reads no settings from elsewhere.
            f"--config-file={self.settings or Path(os.devnull)}",
            # No conftest.py above the rootdir: the checks' own and their parents' up to it.
            f"--confcutdir={rootdir}",
        ]

    def paths(self) -> list[str]:
        return [str(path) for path in self.checks]


def find_catalogue(config_option: str | None, *, cwd: Path) -> Catalogue | None:
    """The catalogue of ``--config``, else ``SYNTHETIC_CONFIG``, else the nearest
    config file, as the plugin finds it.

    None when the config cannot be read: the plugin reports why, as it always has.
    """
    option = config_option or os.environ.get("SYNTHETIC_CONFIG") or None
    try:
        config = locate_config(option, search_from=cwd)
        checks = configured_checks(config, search_from=cwd)
    except ConfigError:
        return None
    return Catalogue(
        config=config,
        checks=tuple(path for path in checks if path.exists()),
        settings=pytest_settings(config.parent) if config is not None else None,
    )


def paths_named(args: list[str], checks: list[Path], cwd: Path) -> list[str]:
    """The paths of pytest's ``args`` that the command line named: ``args`` less one
    occurrence of each of the config's ``checks`` (a node id is never one)."""
    left = list(args)
    for path in checks:
        for index, arg in enumerate(left):
            if "::" not in arg and os.path.abspath(cwd / arg) == os.path.abspath(path):
                del left[index]
                break
    return left


def _rootdir(config: Path, checks: tuple[Path, ...]) -> Path:
    """The directory holding the checks directories; the config file's directory
    when there are none, or they share no directory but the filesystem root."""
    if not checks:
        return config.parent
    holder = Path(os.path.commonpath([path.parent for path in checks]))
    return config.parent if holder == Path(holder.anchor) else holder


def pytest_settings(directory: Path) -> Path | None:
    """The pytest settings file of ``directory``, in pytest's order, or None."""
    for name in PYTEST_SETTINGS_FILES:
        if (directory / name).is_file():
            return directory / name
    pyproject = directory / "pyproject.toml"
    if pyproject.is_file() and _has_tool_pytest(pyproject):
        return pyproject
    return None


def _has_tool_pytest(pyproject: Path) -> bool:
    try:
        tool = parse_toml(pyproject.read_text(encoding="utf-8")).get("tool")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(tool, dict) and "pytest" in tool
