"""A light start: the plugin costs an unrelated pytest run (almost) nothing.

pytest loads `synthetic.plugin` in every project of the environment; only
when synthetic is in use (a config found, or one of its options set) does it
register the run's hooks (`synthetic.run_plugin`) and import the framework.
The time it costs is measured by ``bench/light_start.py``; here, what it loads.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import pytest

@pytest.mark.metric("x")
@pytest.mark.critical("> 5")
def test_x():
    return 1

def test_plain():
    assert True
"""


def test_importing_the_plugin_loads_nothing_heavy() -> None:
    heavy = ("httpx", "pydantic", "polars", "redis", "tenacity", "synthetic.run_plugin")
    code = (
        f"import sys, synthetic.plugin\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""


def _unrelated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SYNTHETIC_ENV", "SYNTHETIC_CONFIG", "SYNTHETIC_ALERTS", "SYNTHETIC_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_unrelated=CHECK)


def test_an_unrelated_project_gets_no_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _unrelated(pytester, monkeypatch)
    pytester.makeconftest(
        "def pytest_sessionfinish(session):\n"
        "    print('run plugin:', session.config.pluginmanager.has_plugin('synthetic-run'))\n"
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=2, warnings=2)  # ours, and pytest's "returned non-None"
    result.stdout.fnmatch_lines(["*run plugin: False*"])
    # The check with a metric marker is told why it is a plain test.
    result.stdout.fnmatch_lines(["*synthetic: checks collected but synthetic is not in use here*"])
    assert not (pytester.path / "synthetic-results").exists()


@pytest.mark.parametrize(
    ("how", "args"),
    [
        ("a config file", []),
        ("an option", ["--alerts=off"]),
        ("an environment variable", []),
    ],
)
def test_synthetic_is_in_use_when_configured(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str, args: list[str]
) -> None:
    _unrelated(pytester, monkeypatch)
    if how == "a config file":
        pytester.makepyprojecttoml("[tool.synthetic]\n")
    if how == "an environment variable":
        monkeypatch.setenv("SYNTHETIC_ALERTS", "off")
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
    # In use: the marked test is a check, its value 1 is within "> 5": OK.
    result.assert_outcomes(passed=2)
    assert (pytester.path / "synthetic-results" / "results.json").is_file()
