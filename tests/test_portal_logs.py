"""The sandbox portal's Pino log: what `synthetic demo` appends before each run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synthetic.sandbox import portal_logs

NOW = 1_795_000_000_000  # ms


def records(path: Path) -> list[dict[str, Any]]:
    found = []
    for line in path.read_bytes().splitlines():
        try:
            found.append(json.loads(line))
        except json.JSONDecodeError:
            found.append({"garbage": line.decode()})
    return found


def test_first_run_writes_the_last_hour_in_time_order(tmp_path: Path) -> None:
    log = tmp_path / "combined.log"
    written = portal_logs.extend(log, "healthy", NOW, seed=1)
    lines = records(log)
    assert written == len(lines) == 60 * (120 + 30)
    times = [line["time"] for line in lines]
    assert times == sorted(times)
    assert times[0] >= NOW - portal_logs.HISTORY_MS
    assert times[-1] < NOW
    assert log.read_bytes().endswith(b"\n")


def test_a_later_run_appends_only_the_time_since_the_last_line(tmp_path: Path) -> None:
    log = tmp_path / "combined.log"
    portal_logs.extend(log, "healthy", NOW, seed=1)
    before = records(log)
    written = portal_logs.extend(log, "healthy", NOW + 30_000, seed=2)
    after = records(log)
    assert after[: len(before)] == before
    new = after[len(before) :]
    assert len(new) == written
    assert 60 <= written <= 80  # half a minute of traffic: 60 requests, 15 calls
    assert all(before[-1]["time"] < line["time"] < NOW + 30_000 for line in new)


def test_a_long_pause_is_capped_at_the_longest_window(tmp_path: Path) -> None:
    log = tmp_path / "combined.log"
    portal_logs.extend(log, "healthy", NOW, seed=1)
    written = portal_logs.extend(log, "healthy", NOW + 5 * portal_logs.HISTORY_MS, seed=2)
    assert written == 60 * (120 + 30)


def test_the_scenario_shapes_the_traffic(tmp_path: Path) -> None:
    def share(scenario: str, keep: Callable[[dict[str, Any]], bool]) -> float:
        log = tmp_path / f"{scenario}.log"
        portal_logs.extend(log, scenario, NOW, seed=3)
        lines = [line for line in records(log) if keep(line)]
        failed = sum(int(line.get("level", 0)) >= 50 for line in lines)
        return failed / len(lines)

    def requests(line: dict[str, Any]) -> bool:
        return "path" in line

    def whmcs(line: dict[str, Any]) -> bool:
        return "WHMCS" in line.get("msg", "")

    assert share("healthy", requests) < 0.01
    assert 0.08 < share("errors", requests) < 0.12
    assert 0.09 < share("whmcs-backlog", whmcs) < 0.15
    assert share("healthy", whmcs) < 0.01


def test_down_stops_logging_and_malformed_writes_garbage(tmp_path: Path) -> None:
    down = tmp_path / "down.log"
    portal_logs.extend(down, "down", NOW, seed=4)
    assert max(line["time"] for line in records(down)) < NOW - 3 * 60_000
    malformed = tmp_path / "malformed.log"
    portal_logs.extend(malformed, "malformed", NOW, seed=4)
    assert 20 < sum("garbage" in line for line in records(malformed)) < 200


def test_a_grown_log_is_rotated_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(portal_logs, "ROTATE_BYTES", 1000)
    log = tmp_path / "combined.log"
    portal_logs.extend(log, "healthy", NOW, seed=1)
    first = log.read_bytes()
    portal_logs.extend(log, "healthy", NOW + 60_000, seed=2)
    assert (tmp_path / "combined.log.1").read_bytes() == first
    # The new file carries on from the rotated one's last line, not an hour back.
    assert len(records(log)) < 200
