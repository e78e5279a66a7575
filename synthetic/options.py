"""The settings every entry point shares, resolved one way: ini < environment < command line.

One table (`OPTIONS`) gives each setting its flags, ini key, environment
variable, default and help. The pytest plugin registers options and ini keys
from it and resolves them through `Option.resolve`; the ``synthetic``
subcommands that never start pytest (``alerts``, ``silence``) resolve the
same table through `resolve_outside_pytest`, which reads the ini keys from
the pytest settings file that a run with that config would use. A bad value
names where it came from, the way pytest-timeout does: ``SYNTHETIC_ALERTS:
'sned' is not one of off, dry-run, send``.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthetic.errors import ConfigError
from synthetic.results import FAIL_ON_CHOICES

ALERT_MODES = ("off", "dry-run", "send")
DEFAULT_RESULTS_DIR = "synthetic-results"


@dataclass(frozen=True)
class Option:
    """One setting, readable from the command line, the environment and the ini file."""

    dest: str
    flags: tuple[str, ...]
    ini: str
    envvar: str
    default: str | None
    help: str
    choices: tuple[str, ...] | None = None

    def resolve(
        self,
        cli: str | None,
        *,
        environ: Mapping[str, str],
        ini: Callable[[str], str | None],
    ) -> str | None:
        """The one precedence order: ini < environment variable < command line."""
        value, where = cli, self.flags[0]
        if value is None:
            value, where = environ.get(self.envvar) or None, self.envvar
        if value is None:
            value, where = ini(self.ini) or None, f"ini {self.ini}"
        if value is None:
            return self.default
        if self.choices and value not in self.choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(self.choices)}")
        return str(value)

    @property
    def described(self) -> str:
        """The help text with where else it is read from (``--help``, ``pytest --help``)."""
        default = f" Default: {self.default}." if self.default else ""
        return f"{self.help}.{default} (env: {self.envvar}, ini: {self.ini})"


OPTIONS = (
    Option(
        "synthetic_env",
        ("--env",),
        "synthetic_env",
        "SYNTHETIC_ENV",
        None,
        "environment of the config file to check (default: the config's default_environment, "
        "else sandbox)",
    ),
    Option(
        "synthetic_config",
        ("--synthetic-config", "--config"),
        "synthetic_config",
        "SYNTHETIC_CONFIG",
        None,
        "config file (default: the nearest synthetic.toml, or pyproject.toml with "
        "[tool.synthetic])",
    ),
    Option(
        "synthetic_results_dir",
        ("--results-dir",),
        "synthetic_results_dir",
        "SYNTHETIC_RESULTS_DIR",
        DEFAULT_RESULTS_DIR,
        "directory for results.json and the default state file",
    ),
    Option(
        "synthetic_fail_on",
        ("--fail-on",),
        "synthetic_fail_on",
        "SYNTHETIC_FAIL_ON",
        "critical",
        "lowest check severity that makes the pytest exit status 1",
        FAIL_ON_CHOICES,
    ),
    Option(
        "synthetic_alerts",
        ("--alerts",),
        "synthetic_alerts",
        "SYNTHETIC_ALERTS",
        "dry-run",
        "what to do with alerts: off; dry-run writes each payload to <results-dir>/alerts/; "
        "send delivers them (choose it explicitly)",
        ALERT_MODES,
    ),
    Option(
        "synthetic_target_version",
        ("--target-version",),
        "synthetic_target_version",
        "SYNTHETIC_TARGET_VERSION",
        None,
        "version of the target being checked (a release or commit), written to the Allure "
        "report's environment",
    ),
    Option(
        "synthetic_location",
        ("--location",),
        "synthetic_location",
        "SYNTHETIC_LOCATION",
        None,
        "where this runner runs from (ci-eu, office): carried by every result, export and "
        "alert; runners of several locations sharing a Redis state store decide by quorum",
    ),
)
BY_DEST = {option.dest: option for option in OPTIONS}


def resolve_outside_pytest(
    cli: Mapping[str, str | None],
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> dict[str, str | None]:
    """Every option for a subcommand that starts no pytest, as a run would resolve
    it: the command line (``cli``: dest -> value), else the environment, else the
    ini key in the pytest settings file beside the config file (the one a run
    with that config reads)."""
    env = os.environ if environ is None else environ
    here = cwd or Path.cwd()
    config = BY_DEST["synthetic_config"].resolve(
        cli.get("synthetic_config"), environ=env, ini=lambda _: None
    )
    settings = _pytest_settings_file(config, here)

    def ini(key: str) -> str | None:
        return None if settings is None else read_ini(settings, key)

    if config is None:  # the ini file may name the config
        config = ini("synthetic_config")
        settings = _pytest_settings_file(config, here) or settings
    return {
        option.dest: config
        if option.dest == "synthetic_config"
        else option.resolve(cli.get(option.dest), environ=env, ini=ini)
        for option in OPTIONS
    }


def _pytest_settings_file(config: str | None, cwd: Path) -> Path | None:
    from synthetic.catalogue import pytest_settings
    from synthetic.config import locate_config

    try:
        found = locate_config(config, search_from=cwd)
    except ConfigError:
        found = None
    return pytest_settings(found.parent if found else cwd)


def read_ini(path: Path, key: str) -> str | None:
    """``key`` of pytest's settings in ``path`` (``[pytest]`` of an ini file, the
    ``pytest`` or ``tool.pytest.ini_options`` table of a TOML file), or None."""
    try:
        if path.suffix == ".toml":
            data = parse_toml(path.read_text(encoding="utf-8"))
            table = data.get("pytest") if path.name.endswith("pytest.toml") else None
            tool = data.get("tool", {})
            if table is None and isinstance(tool, dict):
                pytest_table = tool.get("pytest", {})
                table = pytest_table.get("ini_options", pytest_table)
            value = table.get(key) if isinstance(table, dict) else None
            return None if value is None else str(value)
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path, encoding="utf-8")
        section = "pytest" if parser.has_section("pytest") else "tool:pytest"
        return parser.get(section, key, fallback=None)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, configparser.Error):
        return None


def find_config_file(start: Path) -> Path | None:
    """The nearest ``synthetic.toml``, or ``pyproject.toml`` with ``[tool.synthetic]``."""
    for directory in (start, *start.parents):
        candidate = directory / "synthetic.toml"
        if candidate.is_file():
            return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _has_tool_synthetic(pyproject):
            return pyproject
    return None


def _has_tool_synthetic(pyproject: Path) -> bool:
    try:
        data = parse_toml(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "synthetic" in tool


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads``, with nesting too deep for its recursive parser as a
    `tomllib.TOMLDecodeError` too (no traceback for a hostile file)."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("nested deeper than Python's parser can read") from None
