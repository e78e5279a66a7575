"""Reading only what is new: positions, rotation, copy-truncate, partial lines."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from synthetic.logs.analysis import analyse
from synthetic.logs.metrics import LogMetrics
from tests.support.logs_helpers import NOW_MS, Line, generate, portal_logs

SETTINGS = portal_logs()


def run(paths: list[Path], previous: Any) -> tuple[dict[str, Any], LogMetrics]:
    document = json.loads(json.dumps(analyse([str(p) for p in paths], SETTINGS, previous,
                                             now_ms=NOW_MS)))  # fmt: skip
    return document["state"], LogMetrics(document, SETTINGS)


def numbers(result: LogMetrics) -> dict[str, Any]:
    return {
        "error_rate": result.error_rate().value,
        "error_count": result.error_count().value,
        "slow": result.slow_requests().value,
        "p95": result.response_time_p95().value,
        "external": result.external_error_rate().value,
        "whmcs_p95": result.response_time_p95("dep:whmcs").value,
        "minutes": result.state["minutes"],
    }


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def test_incremental_equals_cold(tmp_path: Path) -> None:
    lines = generate(4000)
    body = b"".join(line.raw for line in lines)
    cold_log = tmp_path / "cold.log"
    cold_log.write_bytes(body)
    _, cold = run([cold_log], None)

    log = tmp_path / "combined.log"
    log.write_bytes(b"")
    state: Any = None
    # Pieces cut anywhere, mid-line included.
    for start in range(0, len(body), 99_991):
        append(log, body[start : start + 99_991])
        state, warm = run([log], state)
    assert numbers(warm) == numbers(cold)


def test_a_run_reads_only_the_new_bytes(tmp_path: Path) -> None:
    lines = generate(2000)
    log = tmp_path / "combined.log"
    log.write_bytes(b"".join(line.raw for line in lines[:1500]))
    state, first = run([log], None)
    assert first.run["bytes_read"] == log.stat().st_size

    added = b"".join(line.raw for line in lines[1500:])
    append(log, added)
    state, second = run([log], state)
    assert second.run["bytes_read"] == len(added)
    assert second.run["files"][str(log)]["started"] == "continued"

    state, third = run([log], state)
    assert third.run["bytes_read"] == 0
    assert numbers(third) == numbers(second)


def test_a_partial_line_counts_once_complete(tmp_path: Path) -> None:
    lines = generate(200, span_ms=60_000)
    failed = next(line for line in lines if line.failed)
    log = tmp_path / "a.log"
    log.write_bytes(failed.raw[:40])
    state, first = run([log], None)
    assert first.run["lines"] == 0  # not yet a line: nothing counted, nothing skipped
    assert first.run["skipped"] == 0
    append(log, failed.raw[40:])
    state, second = run([log], state)
    assert second.error_count().value == 1
    assert second.run["skipped"] == 0


def test_rotation_reads_the_rest_of_the_old_file_then_the_new(tmp_path: Path) -> None:
    lines = generate(300, span_ms=4 * 60_000)
    log = tmp_path / "combined.log"
    log.write_bytes(b"".join(line.raw for line in lines[:100]))
    state, _ = run([log], None)
    append(log, b"".join(line.raw for line in lines[100:150]))  # written before the rotation
    os.rename(log, tmp_path / "combined.log.1")
    log.write_bytes(b"".join(line.raw for line in lines[150:]))
    state, result = run([log], state)
    assert result.run["files"][str(log)]["started"] == "rotated"
    assert result.error_count().value == sum(line.failed for line in lines)


def test_copy_truncate_starts_over(tmp_path: Path) -> None:
    lines = generate(300, span_ms=4 * 60_000)
    log = tmp_path / "combined.log"
    log.write_bytes(b"".join(line.raw for line in lines[:200]))
    state, _ = run([log], None)
    with log.open("r+b") as handle:  # logrotate's copytruncate: same inode, cut to zero
        handle.truncate(0)
    append(log, b"".join(line.raw for line in lines[200:]))
    state, result = run([log], state)
    report = result.run["files"][str(log)]
    assert report["started"] in {"truncated", "replaced"}
    assert report["bytes_read"] == log.stat().st_size
    assert result.error_count().value == sum(line.failed for line in lines)


def test_copy_truncate_that_grew_past_the_offset_is_seen(tmp_path: Path) -> None:
    lines: list[Line] = generate(600, span_ms=4 * 60_000)
    log = tmp_path / "combined.log"
    log.write_bytes(b"".join(line.raw for line in lines[:100]))
    state, _ = run([log], None)
    with log.open("r+b") as handle:
        handle.truncate(0)
    append(log, b"".join(line.raw for line in lines[100:]))  # more than before
    state, result = run([log], state)
    assert result.run["files"][str(log)]["started"] == "replaced"
    assert result.error_count().value == sum(line.failed for line in lines)


def test_lines_older_than_the_longest_window_are_dropped(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"".join(line.raw for line in generate(500, span_ms=3 * 3_600_000)))
    state, result = run([log], None)
    oldest = min(int(m) for m in state["minutes"])
    assert oldest > NOW_MS // 60_000 - 60
    assert result.run["outside_window"] > 0


def test_a_first_run_over_a_long_file_reads_about_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthetic.logs import positions

    # Four hours of lines, the last one in the window: without state, the
    # first run starts near the window (less the margin), not at byte 0.
    lines = generate(12_000, span_ms=4 * 60 * 60_000)
    log = tmp_path / "combined.log"
    log.write_bytes(b"".join(line.raw for line in lines))
    size = log.stat().st_size
    monkeypatch.setattr(positions, "SEEK_MIN_BYTES", size + 1)
    _, whole = run([log], None)
    monkeypatch.setattr(positions, "SEEK_MIN_BYTES", 64 * 1024)
    monkeypatch.setattr(positions, "PROBE_BYTES", 4 * 1024)
    state, sought = run([log], None)

    report = sought.run["files"][str(log)]
    assert report["bytes_before_window"] > 0
    assert report["bytes_read"] + report["bytes_before_window"] == size
    # The window is 60 min (+5 min margin) of 240: about 27 % of the file.
    assert 0.25 * size < report["bytes_read"] < 0.32 * size
    assert numbers(sought) == numbers(whole)
    assert state["files"][str(log)]["offset"] == size

    # The next run carries on from the end, as ever.
    later = generate(300, seed=9, span_ms=60_000)
    append(log, b"".join(line.raw for line in later))
    _, again = run([log], state)
    assert again.run["files"][str(log)]["bytes_read"] == log.stat().st_size - size


def test_a_long_file_without_times_is_read_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthetic.logs import positions

    monkeypatch.setattr(positions, "SEEK_MIN_BYTES", 1024)
    monkeypatch.setattr(positions, "PROBE_BYTES", 512)
    log = tmp_path / "combined.log"
    log.write_bytes(b"not json at all, just text\n" * 2000 + generate(50)[-1].raw)
    _, result = run([log], None)
    report = result.run["files"][str(log)]
    assert report["bytes_before_window"] == 0
    assert report["bytes_read"] == log.stat().st_size


def test_a_log_moved_or_copied_over_itself_is_not_read_twice(tmp_path: Path) -> None:
    log = tmp_path / "combined.log"
    log.write_bytes(b"".join(line.raw for line in generate(2000)))
    state, first = run([log], None)
    # A new inode with the same bytes (cp + mv, a restore, a remount).
    copy = tmp_path / "copy.log"
    copy.write_bytes(log.read_bytes())
    os.replace(copy, log)
    _, again = run([log], state)
    report = again.run["files"][str(log)]
    assert report["started"] == "continued"
    assert report["bytes_read"] == 0
    assert numbers(again) == numbers(first)


def test_an_inode_reused_by_another_file_is_not_taken_for_the_rotated_log(
    tmp_path: Path,
) -> None:
    log = tmp_path / "combined.log"
    log.write_bytes(b"".join(line.raw for line in generate(500)))
    state, _ = run([log], None)
    # The old file is renamed, then replaced by an unrelated file that may get
    # its inode back; a new combined.log starts.
    rotated = tmp_path / "combined.log.1"
    os.replace(log, rotated)
    unrelated = b'{"level":50,"time":%d,"msg":"another service"}\n' % NOW_MS
    rotated.write_bytes(unrelated * 3000)  # same inode, other bytes
    log.write_bytes(b"")
    _, after = run([log], state)
    report = after.run["files"][str(log)]
    assert report["started"] == "rotated"
    assert report["bytes_read"] == 0


def test_a_backlog_on_a_known_file_starts_at_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthetic.logs import positions

    monkeypatch.setattr(positions, "SEEK_MIN_BYTES", 64 * 1024)
    monkeypatch.setattr(positions, "PROBE_BYTES", 4 * 1024)
    lines = generate(12_000, span_ms=4 * 60 * 60_000)
    log = tmp_path / "combined.log"
    head, backlog = lines[:100], lines[100:]
    log.write_bytes(b"".join(line.raw for line in head))
    state, _ = run([log], None)
    start = log.stat().st_size
    append(log, b"".join(line.raw for line in backlog))
    _, after = run([log], state)
    report = after.run["files"][str(log)]
    assert report["started"] == "continued"
    assert report["bytes_before_window"] > 0.6 * (log.stat().st_size - start)
    assert report["bytes_read"] + report["bytes_before_window"] == log.stat().st_size - start


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_log_path_that_is_not_a_file_is_named(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "combined.log"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading must not wait for a writer
    else:
        path.mkdir()
    _, result = run([path], None)
    assert result.file_errors() == [f"{path}: not a regular file"]
