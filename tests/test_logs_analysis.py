"""The log analysis against a straightforward reference computation, on real files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthetic.errors import MeasurementError, NoLogData
from synthetic.logs.aggregate import RELATIVE_ACCURACY
from synthetic.logs.analysis import analyse
from synthetic.logs.metrics import LogMetrics
from tests.support.logs_helpers import (
    NOW_MS,
    Line,
    generate,
    in_window,
    portal_logs,
    rank_value,
    write,
)

SETTINGS = portal_logs()


def metrics(paths: list[Path], previous: Any = None, now_ms: int = NOW_MS) -> LogMetrics:
    document = analyse([str(p) for p in paths], SETTINGS, previous, now_ms=now_ms)
    return LogMetrics(json.loads(json.dumps(document)), SETTINGS)


@pytest.fixture(scope="module")
def lines() -> list[Line]:
    return generate(6000)


def test_counts_and_rates_match_the_reference(tmp_path: Path, lines: list[Line]) -> None:
    log = tmp_path / "combined.log"
    write(log, lines)
    result = metrics([log])

    hour = [line for line in lines if in_window(line, 60)]
    requests = [line for line in hour if line.kind == "request"]
    errors_5xx = [line for line in requests if line.failed]
    assert result.error_rate().value == pytest.approx(len(errors_5xx) / len(requests) * 100)

    recent = [line for line in lines if in_window(line, 5)]
    level50 = [line for line in recent if line.failed]
    assert result.error_count().value == len(level50)

    recent_requests = [line for line in recent if line.kind == "request"]
    slow = [line for line in recent_requests if line.duration > 2000]
    assert result.slow_requests().value == len(slow)

    external = [line for line in hour if line.kind != "request"]
    assert result.external_error_rate().value == pytest.approx(
        sum(line.failed for line in external) / len(external) * 100
    )
    for dependency in ("salesforce", "whmcs", "freebit"):
        calls = [line for line in external if line.kind == dependency]
        measured = result.external_error_rate(dependency)
        assert measured.value == pytest.approx(sum(c.failed for c in calls) / len(calls) * 100)


def test_p95_within_the_sketch_accuracy(tmp_path: Path, lines: list[Line]) -> None:
    log = tmp_path / "combined.log"
    write(log, lines)
    result = metrics([log])
    recent = [line for line in lines if in_window(line, 5)]
    for series, kind in [("requests", "request"), ("dep:whmcs", "whmcs")]:
        expected = rank_value([line.duration for line in recent if line.kind == kind], 0.95)
        measured = result.response_time_p95(series).value
        assert abs(measured - expected) <= RELATIVE_ACCURACY * expected + 0.1, series


def test_window_edges_are_whole_minutes(tmp_path: Path) -> None:
    from synthetic.sandbox.pino import request_line

    def at(ms: int) -> bytes:
        return request_line(
            time_ms=ms, method="GET", path="/x", status=500, duration_ms=1, correlation_id="c"
        )

    first_of_window = NOW_MS - 4 * 60_000  # the 5-minute window: this minute and 4 before
    log = tmp_path / "a.log"
    log.write_bytes(at(first_of_window) + at(first_of_window - 1) + at(NOW_MS + 59_999))
    result = metrics([log])
    assert result.error_count().value == 2  # the line 1 ms before the window is out


def test_clock_skew_future_lines_are_counted_apart(tmp_path: Path) -> None:
    from synthetic.sandbox.pino import request_line

    def at(ms: int) -> bytes:
        return request_line(
            time_ms=ms, method="GET", path="/x", status=200, duration_ms=1, correlation_id="c"
        )

    log = tmp_path / "a.log"
    # Out of order, one 30 s ahead (within the skew: this minute), one an hour ahead.
    log.write_bytes(at(NOW_MS - 120_000) + at(NOW_MS - 240_000) + at(NOW_MS + 30_000)
                    + at(NOW_MS + 3_600_000))  # fmt: skip
    result = metrics([log])
    assert result.slow_requests().evidence["requests"] == 3
    assert result.run["future"] == 1


def test_garbage_and_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    lines = generate(50, span_ms=60_000)
    log = tmp_path / "a.log"
    body = b"".join(line.raw for line in lines)
    log.write_bytes(b"not json at all\n\n" + body + b'{"level":"error","time":%d}\n[1,2]\n'
                    % (NOW_MS - 1000))  # fmt: skip
    result = metrics([log])
    assert result.run["skipped"] == 2
    assert result.error_count().value == sum(line.failed for line in lines) + 1  # "error" is 50


def test_an_empty_file_has_no_data(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"")
    result = metrics([log])
    # Silence is not "no errors": a stopped logger must not look healthy.
    with pytest.raises(NoLogData, match="no log lines in the last 5 min"):
        result.error_count()
    with pytest.raises(NoLogData, match="no request lines"):
        result.error_rate()
    with pytest.raises(NoLogData, match="no request lines"):
        result.slow_requests()


def test_a_log_whose_times_cannot_be_read_says_so(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text('{"level":50,"ts":"yesterday","msg":"x"}\n' * 3)
    with pytest.raises(NoLogData, match="3 untimed"):
        metrics([log]).error_count()


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    result = metrics([tmp_path / "missing.log"])
    assert result.file_errors() == [f"{tmp_path / 'missing.log'}: log file not found"]


def test_errors_written_to_two_files_count_once(tmp_path: Path, lines: list[Line]) -> None:
    combined, errors = tmp_path / "combined.log", tmp_path / "error.log"
    write(combined, lines)
    write(errors, [line for line in lines if line.failed])
    both = metrics([combined, errors])
    alone = metrics([combined])
    assert both.error_count().value == alone.error_count().value > 0
    assert both.error_rate().value == alone.error_rate().value


def test_evidence_is_redacted(tmp_path: Path) -> None:
    from synthetic.sandbox.pino import request_line

    log = tmp_path / "a.log"
    log.write_bytes(
        request_line(
            time_ms=NOW_MS,
            method="GET",
            path="/x",
            status=200,
            duration_ms=3000,
            correlation_id="c",
            extra={
                "email": "jane@example.com",
                "authorization": "Bearer s3cr3t",
                "note": "mail jane@example.com",
            },
        )
    )
    evidence = metrics([log]).slow_requests().evidence
    text = json.dumps(evidence)
    assert "jane@example.com" not in text
    assert "s3cr3t" not in text
    assert evidence["slowest"][0]["line"]["path"] == "/x"


def test_a_failed_analysis_is_a_measurement_error() -> None:
    with pytest.raises(MeasurementError, match="boom"):
        LogMetrics({"error": "log analysis failed: boom"}, SETTINGS)


def test_dependency_field_maps_another_format(tmp_path: Path) -> None:
    settings = portal_logs(
        {"calls": {"dependency_field": "integration", "duration": "responseTime"}}
    )
    log = tmp_path / "a.log"
    rows = [
        {"level": 30, "time": NOW_MS, "integration": "WHMCS", "responseTime": 100},
        {"level": 50, "time": NOW_MS, "integration": "whmcs", "responseTime": 300},
        {"level": 30, "time": NOW_MS, "msg": "WHMCS mentioned, not a call", "responseTime": 5},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    document = analyse([str(log)], settings, None, now_ms=NOW_MS)
    result = LogMetrics(document, settings)
    assert result.external_error_rate("whmcs").value == 50
    assert result.external_error_rate().evidence["calls"] == 2


def test_chunks_without_a_line_in_the_window_are_counted_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthetic.logs import positions
    from synthetic.sandbox.pino import request_line

    monkeypatch.setattr(positions, "CHUNK_BYTES", 4096)  # many chunks

    def at(ms: int, status: int = 200) -> bytes:
        return request_line(
            time_ms=ms, method="GET", path="/x", status=status, duration_ms=3000,
            correlation_id=f"c{ms}",
        )  # fmt: skip

    old = b"".join(at(NOW_MS - 3 * 3_600_000 + i) for i in range(100))  # whole chunks
    untimed = b'{"level":50,"msg":"no time"}\n' * 50
    recent = at(NOW_MS - 1000, status=500) + at(NOW_MS - 2000)
    log = tmp_path / "a.log"
    log.write_bytes(old + untimed + recent)
    result = metrics([log])
    assert result.run["outside_window"] == 100
    assert result.run["untimed"] == 50
    assert result.error_count().value == 1
    assert result.slow_requests().value == 2
    assert len(result.slow_requests().evidence["slowest"]) == 2


def test_evidence_lines_are_found_past_blank_lines(tmp_path: Path) -> None:
    from synthetic.sandbox.pino import request_line

    def at(ms: int, path: str) -> bytes:
        return request_line(
            time_ms=ms, method="GET", path=path, status=200, duration_ms=3000,
            correlation_id=path,
        )  # fmt: skip

    log = tmp_path / "a.log"
    log.write_bytes(at(NOW_MS - 3000, "/a") + b"\n  \n" + at(NOW_MS - 2000, "/b") + b"\n"
                    + at(NOW_MS - 1000, "/c"))  # fmt: skip
    evidence = metrics([log]).slow_requests().evidence
    assert result_paths(evidence) == ["/a", "/b", "/c"]
    assert metrics([log]).run["skipped"] == 0


def result_paths(evidence: dict[str, Any]) -> list[str]:
    return sorted(entry["line"]["path"] for entry in evidence["slowest"])


def test_the_sketch_key_column_is_ddsketchs_own_key() -> None:
    import polars as pl
    from ddsketch.mapping import LogarithmicMapping

    from synthetic.logs.aggregate import RELATIVE_ACCURACY
    from synthetic.logs.analysis import sketch_key

    values = [0.001, 0.5, 1.0, 1.02, 3.0, 57.0, 250.0, 999.9, 2000.0, 12_345.678, 9.9e6]
    values += [1.0 + i / 997 for i in range(5000)] + [float(ms) for ms in range(1, 20_000, 7)]
    keys = pl.select(sketch_key(pl.lit(pl.Series(values)))).to_series().to_list()
    mapping = LogarithmicMapping(RELATIVE_ACCURACY)
    assert keys == [mapping.key(v) for v in values]


def test_identical_errors_in_one_file_are_separate_events(tmp_path: Path) -> None:
    # A burst of the same 500 in one millisecond (pino-http puts its request id
    # in req.id, not in a top-level correlation field): each one counts; only
    # the copies multistream writes to error.log are dropped.
    burst = {"level": 50, "time": NOW_MS, "method": "GET", "path": "/api/orders",
             "statusCode": 500, "duration": 3, "msg": "request errored"}  # fmt: skip
    ok = {**burst, "level": 30, "statusCode": 200, "msg": "request completed"}
    combined, errors = tmp_path / "combined.log", tmp_path / "error.log"
    combined.write_text(json.dumps(burst) + "\n" + json.dumps(burst) + "\n" + json.dumps(ok) + "\n")
    errors.write_text(json.dumps(burst) + "\n" + json.dumps(burst) + "\n")
    result = metrics([combined, errors])
    assert result.error_count().value == 2
    assert result.error_rate().evidence["failed"] == 2
    assert result.error_rate().evidence["total"] == 3
    # A later run reading more of error.log does not count old copies again.
    again = metrics([combined, errors], previous=result.state)
    assert again.error_count().value == 2


def test_errors_differing_only_in_dependency_or_method_both_count(tmp_path: Path) -> None:
    settings = portal_logs({"calls": {"dependency_field": "integration"}})
    rows = [
        {"level": 50, "time": NOW_MS, "integration": "whmcs", "msg": "call failed"},
        {"level": 50, "time": NOW_MS, "integration": "salesforce", "msg": "call failed"},
        {"level": 50, "time": NOW_MS, "method": "GET", "path": "/a", "statusCode": 500},
        {"level": 50, "time": NOW_MS, "method": "POST", "path": "/a", "statusCode": 500},
    ]
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows[::2]))
    second.write_text("".join(json.dumps(r) + "\n" for r in rows[1::2]))
    result = LogMetrics(analyse([str(first), str(second)], settings, None, now_ms=NOW_MS), settings)
    assert result.error_count().value == 4
    assert result.external_error_rate("salesforce").value == 100


ODD_LINES = [
    '{"level":"nan","time":%d,"msg":"odd level"}',
    '{"level":"inf","time":%d,"msg":"odd level"}',
    '{"level":50,"time":%d,"statusCode":"NaN","path":"/x","msg":"odd status"}',
    '{"level":30,"time":1e30,"msg":"a time out of range"}',
    '{"level":30,"time":%d,"path":"/x","statusCode":200,"duration":"inf"}',
    '{"level":30,"time":123456789012345678901234567890,"msg":"an int past 64 bits"}',
    '{"level":50,"time":%d,"err":' + "[" * 600 + "]" * 600 + "}",
]


@pytest.mark.parametrize("odd", ODD_LINES)
def test_an_odd_line_never_stops_the_analysis(tmp_path: Path, odd: str) -> None:
    good = {"level": 30, "time": NOW_MS, "path": "/a", "statusCode": 200, "duration": 40}
    log = tmp_path / "combined.log"
    odd_line = odd.replace("%d", str(NOW_MS))
    log.write_text(json.dumps(good) + "\n" + odd_line + "\n" + json.dumps(good) + "\n")
    result = metrics([log])
    assert result.run["lines"] == 3
    assert result.error_rate().evidence["total"] >= 2  # the good lines counted
    assert result.state["files"][str(log)]["offset"] == log.stat().st_size


def test_credentials_inside_text_are_masked_in_evidence() -> None:
    from synthetic.logs.evidence import line_evidence

    line = json.dumps(
        {
            "level": 50,
            "msg": "WHMCS call failed: Authorization: Bearer eyJhbGciOi.payload.sig",
            "url": "https://api:s3cr3t-pw@whmcs.example/api?action=x&api_key=K-123456&ok=1",
            "err": {"stack": [[[[[["deep secret"]]]]]]},
        }
    ).encode()
    shown = json.dumps(line_evidence(line, frozenset()))
    for secret in ("eyJhbGciOi", "s3cr3t-pw", "K-123456", "deep secret"):
        assert secret not in shown, secret
    assert "https://***@whmcs.example/api?action=x&api_key=***&ok=1" in shown


def test_the_runs_secrets_are_masked_in_the_evidence_the_state_keeps(tmp_path: Path) -> None:
    # A target echoing the monitor's credentials into its log, under names that
    # are not "secret": the state holds none of them, in any form.
    import base64
    from urllib.parse import quote

    from synthetic.redact import Masker

    key, tenant = "k3y-0f-the-monitor", "tenant 42/x"
    basic = base64.b64encode(f"monitor:{key}".encode()).decode()
    echoed = {
        "level": 50,
        "time": NOW_MS,
        "msg": f"rejected x-portal-key {key} for /t/{quote(tenant, safe='')}",
        "req": {"headers": {"x-portal-key": key, "authorization": f"Basic {basic}"}},
    }
    log = tmp_path / "combined.log"
    log.write_text(json.dumps(echoed) + "\n")
    masker = Masker([key, tenant])
    first = analyse([str(log)], SETTINGS, None, now_ms=NOW_MS, masker=masker)
    # A state written before secrets were masked there is cleaned when read.
    raw = {"at": NOW_MS - 1, "line": {"msg": key}}
    older = {**first["state"], "errors": [*first["state"]["errors"], raw]}
    second = analyse([str(log)], SETTINGS, older, now_ms=NOW_MS, masker=masker)

    for document in (first, second):
        stored = json.dumps(document["state"])
        for form in (key, quote(tenant, safe=""), basic):
            assert form not in stored, form
    assert len(second["state"]["errors"]) == 2  # masked, still kept


def test_one_file_listed_twice_is_read_once(tmp_path: Path, lines: list[Line]) -> None:
    log = tmp_path / "combined.log"
    write(log, lines)
    (tmp_path / "current.log").symlink_to(log)
    alone = metrics([log])
    twice = metrics([log, tmp_path / "current.log"])
    assert twice.error_rate().value == alone.error_rate().value
    for key in ("total", "failed"):
        assert twice.error_rate().evidence[key] == alone.error_rate().evidence[key]
    assert twice.run["bytes_read"] == alone.run["bytes_read"]
    assert twice.run["files"][str(tmp_path / "current.log")]["notes"] == [
        f"{tmp_path / 'current.log'}: same file as {log}"
    ]


def test_the_error_hashes_kept_are_bounded_newest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthetic.logs import analysis

    monkeypatch.setattr(analysis, "SEEN_LIMIT", 10)
    log = tmp_path / "a.log"
    times = [NOW_MS - 4 * 60_000 + i * 4000 for i in range(50)]
    rows = [{"level": 50, "time": at, "msg": f"e{i}"} for i, at in enumerate(times)]
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = metrics([log])
    assert result.error_count().value == 50
    kept = sorted(minute for minute, _ in result.state["seen"].values())
    assert kept == sorted(at // 60_000 for at in times[-10:])


def test_route_evidence_shows_the_busiest_routes(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    rows = [
        {"level": 30, "time": NOW_MS, "method": "GET", "path": f"/r{i:02d}", "statusCode": 200,
         "duration": 10}
        for i in range(25)
    ] + [
        {"level": 30, "time": NOW_MS, "method": "GET", "path": "/zz-busy", "statusCode": 200,
         "duration": 10}
    ] * 5  # fmt: skip
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths = metrics([log]).response_time_p95().evidence["paths"]
    assert len(paths) == 20
    assert next(iter(paths)) == "GET /zz-busy"
