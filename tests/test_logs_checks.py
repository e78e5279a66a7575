"""The log checks as a user runs them: once per run with -n 2, state saved once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from synthetic.config import load_config
from synthetic.errors import ConfigError
from tests.support.catalogue_runs import CHECKS
from tests.support.logs_helpers import PORTAL_DEPENDENCIES_TOML, generate

LOG_CHECKS = ("check_logs.py", "check_external.py", "check_application.py")


def project(pytester: pytest.Pytester, *files: str) -> Path:
    config = pytester.path / "synthetic.toml"
    listed = ", ".join(f'"{f}"' for f in files)
    config.write_text(
        f"[environments.test]\nlog_files = [{listed}]\n" + PORTAL_DEPENDENCIES_TOML,
        encoding="utf-8",
    )
    return config


def run_checks(pytester: pytest.Pytester, config: Path, *args: str) -> dict[str, dict[str, Any]]:
    out = pytester.path / "out"
    pytester.runpytest_subprocess(
        *(str(CHECKS / name) for name in LOG_CHECKS), "--env", "test",
        "--synthetic-config", str(config), "--results-dir", str(out),
        "-p", "no:cacheprovider", *args,
    )  # fmt: skip
    document = json.loads((out / "results.json").read_text())
    return {c["id"].split("::", 1)[1]: c for c in document["checks"]}


def write_recent_logs(path: Path, count: int) -> None:
    """Lines of the last few minutes (the generator's clock moved to now)."""
    shift = int(time.time() * 1000) - 1_736_937_000_000
    lines = generate(count, span_ms=4 * 60_000)
    body = b"".join(line.raw for line in lines)
    # Re-time each line to now: same lines, real clock.
    rows = [json.loads(raw) for raw in body.splitlines()]
    path.write_text("".join(json.dumps({**r, "time": r["time"] + shift}) + "\n" for r in rows))


@pytest.mark.slow
def test_with_xdist_the_analysis_runs_once_and_state_is_saved_once(
    pytester: pytest.Pytester,
) -> None:
    log = pytester.path / "combined.log"
    write_recent_logs(log, 3000)
    config = project(pytester, "combined.log")
    results = run_checks(pytester, config, "-n", "2")

    measured = [c for c in results.values() if c["evidence"] and "analysis" in c["evidence"]]
    assert len(measured) >= 8
    computed_by = {c["evidence"]["analysis"]["computed_by"] for c in measured}
    assert len(computed_by) == 1
    assert computed_by <= {"gw0", "gw1"}
    assert {c["evidence"]["analysis"]["bytes_read"] for c in measured} == {log.stat().st_size}

    state = json.loads((pytester.path / "out" / "state-test.json").read_text())
    assert state["logs"]["files"][str(log)]["offset"] == log.stat().st_size
    assert not list((pytester.path / "out" / ".logs").iterdir())  # taken by the controller

    # The next run reads nothing new: the state was saved, and is used.
    again = run_checks(pytester, config, "-n", "2")
    reads = {c["evidence"]["analysis"]["bytes_read"] for c in again.values() if c["evidence"]
             and "analysis" in c["evidence"]}  # fmt: skip
    assert reads == {0}
    rate = "check_error_rate"
    assert again[rate]["value"] == results[rate]["value"]


@pytest.mark.slow
def test_a_missing_file_makes_the_log_checks_unknown(pytester: pytest.Pytester) -> None:
    config = project(pytester, "nowhere.log")
    results = run_checks(pytester, config)
    check = results["check_error_count"]
    assert check["severity"] == "unknown"
    assert str(pytester.path / "nowhere.log") in check["reason"]


def test_bad_logs_config_is_one_line_naming_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "synthetic.toml"
    config.write_text("[environments.test.logs]\nrate_window_minutes = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path=config, environment="test")
    message = str(raised.value)
    assert message.startswith(f"{config}: environments.test.logs.rate_window_minutes:")
    assert "\n" not in message
