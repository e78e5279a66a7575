"""Once per run across processes: the lock, a late result, stale files."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from synthetic.errors import MeasurementError
from synthetic.files import write_json_atomic
from synthetic.logs import shared


def never() -> dict[str, Any]:
    raise AssertionError("computed again: the analysis must run once per run")


def test_a_result_landing_after_the_wait_is_still_read(tmp_path: Path) -> None:
    lock, result = shared._paths(tmp_path, "run-1")
    with shared._locked(lock, timeout_s=1):  # another process analysing
        with pytest.raises(MeasurementError, match=r"held .* for more than 0\.2s"):
            shared.analysis_once(tmp_path, "run-1", never, timeout_s=0.2)
        write_json_atomic(result, {"state": {"files": {}}, "run": {}})
        found = shared.analysis_once(tmp_path, "run-1", never, timeout_s=0.2)
    assert found == {"state": {"files": {}}, "run": {}}


def test_the_first_process_computes_and_the_next_reads(tmp_path: Path) -> None:
    calls: list[int] = []

    def compute() -> dict[str, Any]:
        calls.append(1)
        return {"state": {"n": 1}, "run": {}}

    first = shared.analysis_once(tmp_path, "run-2", compute, timeout_s=1)
    second = shared.analysis_once(tmp_path, "run-2", never, timeout_s=1)
    assert calls == [1]
    assert second == first
    assert shared.take_state(tmp_path, "run-2") == {"n": 1}
    assert not list((tmp_path / shared.DIRECTORY).iterdir())


def test_files_of_runs_that_died_are_swept_after_a_day(tmp_path: Path) -> None:
    directory = tmp_path / shared.DIRECTORY
    directory.mkdir()
    stale, fresh = directory / "dead-run.json", directory / "other-run.lock"
    for path in (stale, fresh):
        path.write_text("{}")
    old = time.time() - shared.STALE_S - 60
    os.utime(stale, (old, old))
    assert shared.take_state(tmp_path, "this-run") is None
    assert not stale.exists()
    assert fresh.exists()
