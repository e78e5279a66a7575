"""A hostile config or marker gets one line naming where, never a traceback.

Deep nesting (10,000 levels, in every TOML form), huge values (megabytes)
and hostile thresholds: the message names the file, the key or the check,
quotes the offending text cut to 80 characters, and is one bounded line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from checks.settings import portal_settings
from synthetic.config import load_config
from synthetic.errors import ConfigError
from synthetic.options import find_config_file

REPO = Path(__file__).resolve().parent.parent
DEEP = 10_000
MB = 2_000_000
# A message quoting an 80-character excerpt, a path and a dotted key stays
# well under this; a message quoting the whole hostile text would not.
LONGEST_MESSAGE = 600

DEEP_FORMS = {
    "arrays": "params = { a = " + "[" * DEEP + "]" * DEEP + " }",
    "inline tables": "params = " + "{ a = " * DEEP + "1" + " }" * DEEP,
    "dotted keys": "params." + ".".join(["k"] * DEEP) + " = 1",
}


def config_error(path: Path, **options: object) -> str:
    """The one-line error of loading ``path``, or of reading the portal catalogue's
    settings (its ``params``, read when its checks are collected)."""

    def load() -> None:
        portal_settings(load_config(path=path, environ={}, **options))  # type: ignore[arg-type]

    with pytest.raises(ConfigError) as caught:
        load()
    message = str(caught.value)
    assert "\n" not in message
    assert len(message) <= LONGEST_MESSAGE, message[:300]
    return message


@pytest.mark.parametrize("form", sorted(DEEP_FORMS))
def test_deep_nesting_is_one_line_naming_the_file(tmp_path: Path, form: str) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text("[environments.sandbox]\n" + DEEP_FORMS[form] + "\n")

    message = config_error(path)

    assert message.startswith(f"{path}: ")
    assert "nested" in message


def test_deep_table_headers_are_one_line_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text("[environments.sandbox.params." + ".".join(["k"] * DEEP) + "]\nx = 1\n")

    message = config_error(path)

    assert message.startswith(f"{path}: environments.sandbox.params.k.k.k")
    assert "nested deeper than" in message


def test_deep_nesting_in_pyproject_is_one_line_and_never_crashes_the_search(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.synthetic]\ncheck = " + "[" * DEEP + "]" * DEEP + "\n")

    assert find_config_file(tmp_path) is None  # not readable: not a config, no crash
    assert config_error(path).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("toml", "key", "shown"),
    [
        (f'[environments.sandbox]\n"{"k" * MB}" = 1\n', "environments.sandbox.'kkkk", "kkkk"),
        (
            f'[environments.sandbox]\nbase_url = "{"h" * MB}://x"\n',
            "environments.sandbox.base_url",
            "hhhh",
        ),
        (
            f'[environments.sandbox.params.health_entries]\n"{"e" * MB}" = "a.b"\n',
            "environments.sandbox.params.health_entries",
            "eeee",
        ),
        (
            f'[environments.sandbox]\nbase_url = "${{{"V" * MB}}}"\n',
            "environments.sandbox.base_url",
            "VVVV",
        ),
        (
            f'[environments.sandbox.params]\nhealth_checks = ["{"d" * MB}", "{"d" * MB}"]\n',
            "environments.sandbox.params.health_checks",
            "dddd",
        ),
    ],
    ids=["unknown key", "scheme", "entry path", "variable name", "repeated name"],
)
def test_huge_values_are_cut_in_the_message(
    tmp_path: Path, toml: str, key: str, shown: str
) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text(toml)

    message = config_error(path)

    assert message.startswith(f"{path}: {key}")
    assert shown in message  # the offending text is named, cut


def test_a_huge_environment_name_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text("[environments.staging]\n")

    message = config_error(path, environment="p" * MB)

    assert "is not defined (defined: sandbox, staging)" in message


# -- markers and overrides ---------------------------------------------------------------------

INI = "[pytest]\npython_files = check_*.py\npython_functions = check_*\n"


def _metric(arguments: str) -> str:
    return f"@pytest.mark.metric({arguments})\n@pytest.mark.critical('> 5')"


HOSTILE_MARKERS = {
    "long comparison": '@pytest.mark.critical("> " + "9" * 2_000_000)',
    "long list": '@pytest.mark.critical("in [" + "\'a\', " * 400_000)',
    "unclosed string": '@pytest.mark.critical("== \'" + "x" * 2_000_000)',
    "not a string": '@pytest.mark.critical(["x"] * 1_000_000)',
    "deep list": "@pytest.mark.critical(DEEP)",
    "huge unit": '@pytest.mark.metric("m", unit="u" * 2_000_000)\n@pytest.mark.critical("> 5s")',
    "bad id": _metric('"m m" * 1_000_000'),
    "priority": _metric('"m", priority="P" * 2_000_000'),
    "unreachable": _metric('"m", unreachable="u" * 2_000_000'),
    "sustain": _metric('"m", sustain="9" * 2_000_000 + "x"'),
    "depends_on": _metric('"m", depends_on=["x" * 2_000_000]'),
    "component": _metric('"m", component=["c"] * 1_000_000'),
}


@pytest.mark.parametrize("marker", sorted(HOSTILE_MARKERS))
def test_a_hostile_marker_is_one_bounded_line_naming_the_check(
    pytester: pytest.Pytester, marker: str
) -> None:
    pytester.makeini(INI)
    pytester.makefile(".toml", synthetic="")  # a project using synthetic has a config
    pytester.makepyfile(
        check_hostile=(
            "import pytest\n"
            "DEEP = []\n"
            "for _ in range(10_000):\n"
            "    DEEP = [DEEP]\n\n" + HOSTILE_MARKERS[marker] + "\ndef check_it():\n    return 1\n"
        )
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    output = result.stdout.lines + result.stderr.lines
    assert max(len(line) for line in output) <= LONGEST_MESSAGE
    named = [line for line in output if line.startswith("check_hostile.py::check_it: ")]
    assert len(named) == 1, "\n".join(output)
    assert "Traceback" not in result.stdout.str()


def test_a_hostile_threshold_override_is_cut_naming_the_key(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makefile(".toml", synthetic="")  # a project using synthetic has a config
    pytester.makepyfile(
        check_plain='import pytest\n@pytest.mark.critical("> 5")\ndef check_one():\n    return 1\n'
    )
    pytester.makefile(
        ".toml",
        synthetic=f'[environments.sandbox.thresholds.one]\ncritical = "> {"9" * MB}x"\n',
    )

    result = pytester.runpytest("-p", "no:cacheprovider")

    output = result.stdout.lines
    assert max(len(line) for line in output) <= LONGEST_MESSAGE
    key = 'environments.sandbox.thresholds."one".critical: invalid threshold'
    assert any(key in line for line in output), "\n".join(output)


# -- through the command, as a user meets them -------------------------------------------------


def synthetic_run(project: Path) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHETIC_")}
    return subprocess.run(
        [sys.executable, "-m", "synthetic", "run", "--results-dir", "out"],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "check_one.py").write_text(
        'import pytest\n@pytest.mark.critical("> 5")\ndef check_one():\n    return 1\n'
    )
    return tmp_path


def test_a_deeply_nested_config_is_one_line_from_the_command(project: Path) -> None:
    config = project / "synthetic.toml"
    config.write_text("[environments.sandbox]\n" + DEEP_FORMS["arrays"] + "\n")

    done = synthetic_run(project)

    assert done.returncode == 3
    assert "Traceback" not in done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if str(config) in line]
    assert line.endswith(f"{config}: invalid TOML: nested deeper than Python's parser can read")


@pytest.mark.slow
def test_a_bad_threshold_override_does_not_also_warn_of_a_typo(project: Path) -> None:
    (project / "synthetic.toml").write_text(
        '[environments.sandbox]\nbase_url = "http://127.0.0.1:9"\n'
        '[environments.sandbox.thresholds.one]\ncritical = "over 9000"\n'
    )

    done = synthetic_run(project)

    assert done.returncode == 3
    assert "invalid threshold 'over 9000'" in done.stdout
    assert "no check measures this metric" not in done.stdout + done.stderr
