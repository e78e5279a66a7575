"""Odd numbers: NaN, infinities, numbers past a double, negative counters.

A monitor must never read them as a healthy value: a value it cannot use
is UNKNOWN naming the field, a counter that is not a counter is never kept
as the next run's baseline, and a log line with an odd number still counts
(its level, its status), without that number.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from synthetic.logs.analysis import analyse
from synthetic.logs.metrics import LogMetrics
from synthetic.logs.settings import LogsSettings
from tests.logs_helpers import NOW_MS

SETTINGS = LogsSettings()

# Written as a BFF's JSON encoder may write them (JavaScript's JSON.stringify
# writes null, but Python's json.dumps, many loggers and hand-made lines do not).
ODD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 5000]


def _line(level: int, status: int, duration: str) -> str:
    return (
        f'{{"level":{level},"time":{NOW_MS},"method":"GET","path":"/api/x",'
        f'"statusCode":{status},"duration":{duration},"msg":"request"}}'
    )


def _analysed(tmp_path: Path, lines: list[str]) -> LogMetrics:
    log = tmp_path / "combined.log"
    log.write_text("".join(line + "\n" for line in lines))
    document = analyse([str(log)], SETTINGS, None, now_ms=NOW_MS)
    return LogMetrics(json.loads(json.dumps(document)), SETTINGS)


@pytest.mark.parametrize("odd", ODD_NUMBERS)
def test_error_lines_with_an_odd_number_still_count(tmp_path: Path, odd: str) -> None:
    errors = [_line(50, 500, odd) for _ in range(40)]
    fine = [_line(30, 200, "120") for _ in range(10)]

    result = _analysed(tmp_path, errors + fine)

    counted = result.error_count()
    assert counted.value == 40
    # The lines are kept as evidence, parsed, and still valid JSON.
    kept = counted.evidence["latest_errors"]
    assert kept and all(entry["line"]["level"] == 50 for entry in kept)
    json.dumps(counted.evidence, allow_nan=False)
    assert result.error_rate().value == pytest.approx(40 / 50 * 100)
    # The odd durations are left out, not read as a number: the p95 is the fine lines'.
    p95 = result.response_time_p95().value
    assert math.isfinite(p95)
    assert p95 == pytest.approx(120, rel=0.02)


def test_an_odd_number_in_the_status_leaves_the_level(tmp_path: Path) -> None:
    lines = [
        f'{{"level":50,"time":{NOW_MS},"path":"/a","statusCode":NaN,"duration":5}}',
        f'{{"level":50,"time":{NOW_MS},"path":"/a","statusCode":Infinity,"duration":5}}',
        f'{{"level":30,"time":{NOW_MS},"path":"/a","statusCode":200,"duration":5}}',
    ]

    result = _analysed(tmp_path, lines)

    assert result.error_count().value == 2
    assert result.run["skipped"] == 0
