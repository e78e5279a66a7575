"""The log mapping: field paths, presets and their detection, request and call lines
each with their own fields, dependencies by name, the monitor's own lines left out,
and reasons that name what did not map. Lines are written here, by hand or from
the stacks' documented shapes; real apps are in test_logs_real_stacks.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthetic.config import load_config
from synthetic.errors import ConfigError, MeasurementError, NoLogData
from synthetic.logs import positions
from synthetic.logs.analysis import analyse
from synthetic.logs.metrics import LogMetrics
from synthetic.logs.settings import LogsSettings, split_path
from synthetic.logs.shapes import detect, resolve
from tests.support.logs_helpers import NOW_MS, portal_logs, rank_value


def run(tmp_path: Path, rows: list[Any], logs: dict[str, Any] | None = None) -> LogMetrics:
    """The metrics of ``rows`` (dicts as JSON lines; bytes as they are) in one file."""
    settings = portal_logs(logs)
    log = tmp_path / "app.log"
    log.write_bytes(b"".join(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n"
                             for r in rows))  # fmt: skip
    document = analyse([str(log)], settings, None, now_ms=NOW_MS)
    return LogMetrics(json.loads(json.dumps(document)), settings)


def pino_http(status: int, ms: float, *, url: str = "/api/x", rid: str = "1", **extra: Any) -> Any:
    """A pino-http "request completed" line, with its default serializers' shape."""
    return {
        "level": 30,
        "time": NOW_MS - 1000,
        "req": {
            "id": rid,
            "method": "GET",
            "url": url,
            "headers": {"user-agent": extra.pop("agent", "curl/8")},
        },
        "res": {"statusCode": status},
        "responseTime": ms,
        "msg": "request completed",
        **extra,
    }


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("res.statusCode", ("res", "statusCode")),
        ("time", ("time",)),
        (r"labels\.app", ("labels.app",)),
        (r"a\.b.c", ("a.b", "c")),
    ],
)
def test_a_field_is_a_path_with_an_escape_for_dots(path: str, parts: tuple[str, ...]) -> None:
    assert split_path(path) == parts


@pytest.mark.parametrize("bad", ["res..statusCode", ".x", "x.", "a.b.c.d.e.f.g.h.i"])
def test_a_malformed_path_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="field path"):
        LogsSettings.model_validate({"requests": {"status": bad}})


def test_nested_fields_read_the_same_on_both_parsing_paths(tmp_path: Path) -> None:
    rows = [pino_http(500, 10), pino_http(200, 3000), pino_http(200, 20)]
    fast = run(tmp_path, rows, {"preset": "pino-http"})
    # A line that is not JSON sends the chunk down the line-by-line path.
    slow = run(tmp_path, [*rows, b"not json\n"], {"preset": "pino-http"})
    for result in (fast, slow):
        assert result.error_rate().value == pytest.approx(100 / 3)
        assert result.slow_requests().value == 1
    assert slow.about["skipped"]["skipped"] == 1


def test_the_old_flat_keys_say_where_they_went(tmp_path: Path) -> None:
    config = tmp_path / "synthetic.toml"
    config.write_text('[environments.x.logs]\nduration_field = "responseTime"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path=config, environment="x")
    message = str(caught.value)
    assert "\n" not in message
    assert "environments.x.logs" in message
    assert "requests.duration and calls.duration" in message


def test_a_field_that_would_be_a_value_and_an_object_is_refused_at_load(tmp_path: Path) -> None:
    config = tmp_path / "synthetic.toml"
    config.write_text('[environments.x.logs]\npreset = "pino-http"\ncalls = { error = "req" }\n')
    with pytest.raises(ConfigError, match=r"environments\.x\.logs: .*'req' overlaps"):
        load_config(path=config, environment="x")


@pytest.mark.parametrize(
    ("records", "preset"),
    [
        ([{"level": 30, "msg": "hi"}, pino_http(200, 5)], "pino-http"),
        ([pino_http(200, 5), {"level": 30, "context": "InstanceLoader", "msg": "up"}],
         "nestjs-pino"),
        ([{"level": 30, "reqId": "req-1", "req": {"url": "/"}, "msg": "incoming request"},
          {"level": 30, "reqId": "req-1", "res": {"statusCode": 200}, "responseTime": 1.5}],
         "fastify"),
        ([{"level": 30, "statusCode": 200, "duration": 5, "path": "/"}], "guide"),
    ],
)  # fmt: skip
def test_the_shape_is_detected_from_the_lines(records: list[Any], preset: str) -> None:
    found = detect(records)
    assert found is not None
    assert found[0] == preset


def test_nothing_recognisable_is_not_a_guess() -> None:
    assert detect([{"level": 30, "msg": "started"}]) is None


def test_a_preset_is_a_start_that_the_table_overrides() -> None:
    settings = LogsSettings.model_validate(
        {"preset": "pino-http", "requests": {"duration": "elapsed"}, "level_field": "lvl"}
    )
    shape = resolve(settings, "pino-http", detected=None)
    assert shape.request_status == "res.statusCode"  # from the preset
    assert shape.request_duration == "elapsed"  # from the table
    assert shape.level == "lvl"
    assert shape.call_duration == "duration"  # calls have their own


def test_requests_and_calls_each_have_their_own_duration(tmp_path: Path) -> None:
    requests = [float(n) for n in range(100, 300, 10)]
    calls = [float(n) for n in range(4000, 6000, 100)]
    rows: list[dict[str, Any]] = [
        {"level": 30, "time": NOW_MS, "status": 200, "took": ms} for ms in requests
    ]
    rows += [{"level": 30, "time": NOW_MS, "msg": "WHMCS call", "elapsedMs": ms} for ms in calls]
    mapping = {
        "preset": "guide",
        "requests": {"status": "status", "duration": "took"},
        "calls": {"duration": "elapsedMs"},
    }
    result = run(tmp_path, rows, mapping)
    assert result.response_time_p95().value == pytest.approx(rank_value(requests, 0.95), rel=0.01)
    whmcs = result.response_time_p95("dep:whmcs").value
    assert whmcs == pytest.approx(rank_value(calls, 0.95), rel=0.01)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WhmcsService", "whmcs"),
        ("SalesforceClient", "salesforce"),
        ("freebit", "freebit"),
        ("FREEBIT-API", "freebit"),
        ("HealthCheckService", None),
        ("InvoiceController", None),
        ("LegacyBilling", "whmcs"),  # an alias
    ],
)
def test_a_dependency_is_named_by_a_field_through_aliases(text: str, expected: str | None) -> None:
    settings = LogsSettings.model_validate(
        {
            "calls": {"dependency_field": "context"},
            "dependencies": {"whmcs": {"aliases": ["LegacyBilling"]}, "salesforce": {},
                             "freebit": {}},
        }
    )  # fmt: skip
    assert resolve(settings, "guide", detected=None).dependency_of(text) == expected


def test_a_fourth_dependency_needs_no_code(tmp_path: Path) -> None:
    rows = [
        {"level": 30, "time": NOW_MS, "msg": "Stripe charge ok", "duration": 120},
        {"level": 50, "time": NOW_MS, "msg": "Stripe charge failed", "duration": 90},
        {"level": 30, "time": NOW_MS, "msg": "WHMCS call", "duration": 10},
    ]
    result = run(tmp_path, rows, {"dependencies": {"whmcs": {}, "stripe": {}}})
    assert result.external_error_rate("stripe").value == 50
    assert result.external_error_rate().evidence["per_dependency"] == {"stripe": 2, "whmcs": 1}


def test_the_monitors_own_lines_are_left_out_with_their_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(positions, "CHUNK_BYTES", 1024)
    own = "synthetic-20261205T000000Z-abc123-check_health_status"
    rows: list[Any] = [pino_http(200, 5, rid=str(n)) for n in range(20)]
    rows += [
        # logged while serving the monitor's request (same id), before its completed line
        {"level": 50, "time": NOW_MS - 1000, "req": {"id": "77"}, "msg": "Salesforce call failed"},
        pino_http(500, 9000, rid="77", agent="synthetic/0.1.0"),
        pino_http(503, 9000, rid=own),
        # in a later chunk, another line of the same request
        *[{"level": 30, "time": NOW_MS - 1000, "msg": "padding " + "x" * 200} for _ in range(8)],
        {"level": 50, "time": NOW_MS - 1000, "req": {"id": "77"}, "msg": "late, same request"},
    ]
    result = run(tmp_path, rows, {"preset": "pino-http"})
    assert result.error_rate().value == 0
    assert result.slow_requests().value == 0
    assert result.error_count().value == 0
    assert result.about["own_lines_left_out"] == 4


def test_levels_by_name_count(tmp_path: Path) -> None:
    rows = [{"level": "error", "time": NOW_MS, "msg": "x"}, {"level": "info", "time": NOW_MS},
            {"level": "fatal", "time": NOW_MS}, {"level": 40, "time": NOW_MS}]  # fmt: skip
    assert run(tmp_path, rows).error_count().value == 2
    assert run(tmp_path, rows, {"error_level": "warn"}).error_count().value == 3


def test_a_field_that_matches_nothing_is_named_with_the_keys_seen(tmp_path: Path) -> None:
    rows = [pino_http(200, 5), pino_http(500, 5)]
    result = run(tmp_path, rows, {"preset": "guide"})  # flat fields on nested lines
    with pytest.raises(MeasurementError) as caught:
        result.error_rate()
    assert not isinstance(caught.value, NoLogData)
    reason = str(caught.value)
    assert "'statusCode' (logs.requests.status)" in reason
    assert "top-level keys seen: level, msg, req, res, responseTime, time" in reason
    assert "\n" not in reason


def test_a_dependency_field_that_no_line_has_is_unknown_not_skipped(tmp_path: Path) -> None:
    rows = [{"level": 30, "time": NOW_MS, "msg": "WHMCS call", "duration": 5}]
    result = run(tmp_path, rows, {"calls": {"dependency_field": "integration"}})
    with pytest.raises(MeasurementError, match=r"'integration' \(logs.calls.dependency_field\)"):
        result.external_error_rate("whmcs")


def test_no_calls_to_a_dependency_that_is_mapped_is_nothing_to_measure(tmp_path: Path) -> None:
    rows = [{"level": 30, "time": NOW_MS, "msg": "WHMCS call", "duration": 5}]
    with pytest.raises(NoLogData):
        run(tmp_path, rows).external_error_rate("freebit")


def test_fastify_takes_the_path_from_the_incoming_request_line(tmp_path: Path) -> None:
    rows = [
        {"level": 30, "time": NOW_MS, "reqId": "req-1", "req": {"method": "GET",
         "url": "/api/orders/12"}, "msg": "incoming request"},
        {"level": 50, "time": NOW_MS, "reqId": "req-1", "res": {"statusCode": 500},
         "err": {"message": "boom"}, "msg": "boom"},
        {"level": 30, "time": NOW_MS, "reqId": "req-1", "res": {"statusCode": 500},
         "responseTime": 2.5, "msg": "request completed"},
    ]  # fmt: skip
    result = run(tmp_path, rows, {"preset": "fastify"})
    assert result.error_rate().evidence["total"] == 1  # the error line is not a request
    assert list(result.response_time_p95().evidence["paths"]) == ["GET /api/orders/:id"]
