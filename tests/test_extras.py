"""Optional parts are extras; a configured feature whose extra is missing says
which one to install, in one line, where it is used (`synthetic.extras`)."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from synthetic.errors import ConfigError, MissingExtra
from synthetic.extras import EXTRAS, require

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~ ]", r, maxsplit=1)[0].lower() for r in requirements}


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_each_extra_is_declared_and_not_in_the_core(extra: str) -> None:
    declared = _names(PROJECT["optional-dependencies"][extra])
    assert declared == set(EXTRAS[extra])
    assert not declared & _names(PROJECT["dependencies"])
    assert extra in PROJECT["optional-dependencies"]["all"][0]


def test_a_missing_extra_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, "ddsketch", None)
    with pytest.raises(MissingExtra) as info:
        require("logs", "the log checks (log_analysis)")
    message = str(info.value)
    assert message == (
        "the log checks (log_analysis) needs the 'logs' extra (ddsketch is not installed): "
        "pip install 'pytest-synthetic[logs]'"
    )
    assert isinstance(info.value, ConfigError)
    assert info.value.extra == "logs"


def test_an_installed_extra_passes() -> None:
    for extra in EXTRAS:
        require(extra, "a feature")  # the test environment has [all]


@pytest.mark.slow
def test_a_check_whose_extra_is_missing_is_unknown_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npython_files = check_*.py\npython_functions = check_*\n")
    pytester.makefile(
        ".toml",
        synthetic='[environments.sandbox]\npostgres_dsn = "postgresql://127.0.0.1:1/x"\n',
    )
    pytester.makeconftest("import sys\nsys.modules['psycopg'] = None  # not installed\n")
    pytester.makepyfile(
        check_db="""
import pytest

@pytest.mark.metric("db.ping")
@pytest.mark.critical("> 1")
def check_ping(postgres):
    return 0
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--alerts=off")
    document = json.loads((pytester.path / "synthetic-results" / "results.json").read_text())
    (check,) = document["checks"]
    assert check["severity"] != "OK", result.stdout.str()
    assert "needs the 'postgres' extra" in check["reason"]
    assert "pip install 'pytest-synthetic[postgres]'" in check["reason"]
