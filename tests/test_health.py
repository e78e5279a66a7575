"""synthetic.measure.health: health bodies of every shape read as named entries, and the
config keys that say which entries are checked and where a body keeps them.

The real @nestjs/terminus answers are in tests/test_check_health.py; here the
bodies are written out, so each shape and each hostile case is pinned.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from checks.settings import PortalSettings, portal_settings
from synthetic.config import load_config
from synthetic.errors import ConfigError, MeasurementError
from synthetic.measure.health import HealthBody, read_health, read_snapshot
from synthetic.measure.http import Snapshot
from synthetic.outcome import MAX_REASON, evaluate, shown_reason
from synthetic.results import Measurement, Severity
from synthetic.spec import CheckSpec
from synthetic.thresholds import parse_threshold

# A @nestjs/terminus 12 body (HTTP 503) for whmcs down and salesforce degraded,
# written out by hand: terminus 12 emits "degraded" (HealthIndicatorSession.degraded),
# but the real app of tests/test_check_health.py (tests/node/nest_bff.js) runs the
# pinned terminus 11, which has only "up" and "down", so degraded is pinned here.
TERMINUS_503 = json.loads(
    '{"status":"error","info":{"database":{"responseTime":0,"status":"up"},'
    '"salesforce":{"message":"slow answers","status":"degraded"}},'
    '"error":{"whmcs":{"message":"connect ECONNREFUSED 127.0.0.1:1 (whmcs)",'
    '"responseTime":0,"status":"down"}},'
    '"details":{"database":{"responseTime":0,"status":"up"},'
    '"salesforce":{"message":"slow answers","status":"degraded"},'
    '"whmcs":{"message":"connect ECONNREFUSED 127.0.0.1:1 (whmcs)","responseTime":0,'
    '"status":"down"}}}'
)


def statuses(body: HealthBody) -> dict[str, str | None]:
    return {name: entry.status for name, entry in body.entries.items()}


def failure(body: Any, *, path: str | None = None, http_status: int = 200) -> str:
    with pytest.raises(MeasurementError) as info:
        read_health(body, endpoint="/health", path=path, http_status=http_status)
    message = str(info.value)
    assert "\n" not in message
    return message


def entry_failure(body: HealthBody, name: str) -> str:
    with pytest.raises(MeasurementError) as info:
        body.entry(name)
    message = str(info.value)
    assert "\n" not in message
    return message


def spec(metric: str, labels: dict[str, str], critical: str, warning: str | None = None):
    return CheckSpec(
        node_id=f"checks/check_x.py::check_x[{next(iter(labels.values()))}]",
        metric=metric,
        unit=None,
        component="bff",
        runbook=None,
        priority="P1",
        warning=parse_threshold(warning, unit=None) if warning else None,
        critical=parse_threshold(critical, unit=None),
        labels=labels,
    )


# -- the shapes ------------------------------------------------------------------------------


def test_the_guides_health_checks() -> None:
    body = read_health(
        {"status": "degraded", "checks": {"database": "ok", "cache": "fail"}}, endpoint="/health"
    )
    assert body.shape == "checks"
    assert statuses(body) == {"database": "ok", "cache": "fail"}


def test_checks_entries_may_be_objects_with_a_status() -> None:
    body = read_health(
        {"checks": {"database": {"status": "ok", "latencyMs": 3}, "cache": "ok"}},
        endpoint="/health",
    )
    assert statuses(body) == {"database": "ok", "cache": "ok"}


def test_the_auth_health_checks_services() -> None:
    body = read_health(
        {"status": "degraded", "services": {"database": "ok", "whmcs": "degraded"}},
        endpoint="/auth/health-check",
    )
    assert body.shape == "services"
    assert statuses(body) == {"database": "ok", "whmcs": "degraded"}


def test_terminus_details_up_reads_ok_and_down_keeps_its_word_and_message() -> None:
    body = read_health(TERMINUS_503, endpoint="/auth/health-check", http_status=503)
    assert body.shape == "terminus"
    assert statuses(body) == {"database": "ok", "salesforce": "degraded", "whmcs": "down"}
    whmcs = body.entry("whmcs")
    assert whmcs.raw == "down"
    assert whmcs.message == "connect ECONNREFUSED 127.0.0.1:1 (whmcs)"
    assert body.entry("database").message is None


def test_terminus_without_details_reads_info_and_error_together() -> None:
    # Older terminus bodies; an indicator in both tables is read from "error".
    old = {
        "status": "error",
        "info": {"database": {"status": "up"}, "cache": {"status": "up"}},
        "error": {"cache": {"status": "down", "message": "ETIMEDOUT"}},
    }
    body = read_health(old, endpoint="/health")
    assert body.shape == "terminus info/error"
    assert statuses(body) == {"database": "ok", "cache": "down"}
    assert body.entry("cache").message == "ETIMEDOUT"
    only_error = read_health(
        {"status": "error", "error": {"db": {"status": "down"}}}, endpoint="/h"
    )
    assert statuses(only_error) == {"db": "down"}


def test_a_configured_path_reads_any_other_shape() -> None:
    body = read_health(
        {"data": {"integrations": {"whmcs": {"status": "UP"}, "freebit": "Degraded"}}},
        endpoint="/auth/health-check",
        path="data.integrations",
    )
    assert body.shape == "path 'data.integrations'"
    assert statuses(body) == {"whmcs": "ok", "freebit": "degraded"}


def test_a_configured_path_comes_first_and_falls_back_to_the_known_shapes() -> None:
    both = {"checks": {"database": "fail"}, "app": {"probes": {"database": "ok"}}}
    assert read_health(both, endpoint="/health", path="app.probes").shape == "path 'app.probes'"
    # The same endpoint answering terminus's 503 body: the path is absent, details is read.
    body = read_health(TERMINUS_503, endpoint="/health", path="app.probes", http_status=503)
    assert body.shape == "terminus"


@pytest.mark.parametrize(
    ("word", "read"),
    [
        ("up", "ok"),
        ("UP", "ok"),
        (" Up ", "ok"),
        ("ok", "ok"),
        ("OK", "ok"),
        ("down", "down"),
        ("DOWN", "down"),
        ("Degraded", "degraded"),
        ("fail", "fail"),
        ("failing", "failing"),
        ("pass", "pass"),  # not a synonym: the thresholds judge it (not 'ok': critical)
    ],
)
def test_status_words(word: str, read: str) -> None:
    body = read_health({"details": {"x": {"status": word}}}, endpoint="/health")
    assert body.entry("x").status == read
    assert body.entry("x").raw == word.strip()


# -- what the checks make of it --------------------------------------------------------------


def test_a_down_entry_is_critical_naming_it_with_its_message() -> None:
    body = read_health(TERMINUS_503, endpoint="/auth/health-check", http_status=503)
    integration = spec(
        "integration.health",
        {"integration": "whmcs"},
        "not in ['ok', 'degraded']",
        warning="== 'degraded'",
    )
    outcome = evaluate(integration, body.measure("whmcs"))
    assert outcome.severity is Severity.CRITICAL
    assert outcome.reason == (
        "integration.health{integration=\"whmcs\"} = 'down' (critical not in ['ok', 'degraded'])"
        ": connect ECONNREFUSED 127.0.0.1:1 (whmcs)"
    )
    assert outcome.evidence == {
        "endpoint": "/auth/health-check",
        "http_status": 503,
        "shape": "terminus",
        "entries": {"database": "up", "salesforce": "degraded", "whmcs": "down"},
    }
    database = spec("integration.health", {"integration": "database"}, "not in ['ok', 'degraded']")
    assert evaluate(database, body.measure("database")).severity is Severity.OK
    salesforce = spec(
        "integration.health",
        {"integration": "salesforce"},
        "not in ['ok', 'degraded']",
        warning="== 'degraded'",
    )
    assert evaluate(salesforce, body.measure("salesforce")).severity is Severity.WARNING


def test_health_check_thresholds_read_terminus_words() -> None:
    check = spec("health.check", {"name": "database"}, "!= 'ok'")
    for word, expected in [("up", Severity.OK), ("down", Severity.CRITICAL)]:
        body = read_health({"details": {"database": {"status": word}}}, endpoint="/health")
        assert evaluate(check, body.measure("database")).severity is expected


def test_a_note_ends_the_reason_whatever_the_severity() -> None:
    check = spec("health.check", {"name": "cache"}, "!= 'ok'")
    ok = evaluate(check, Measurement("ok", note="3 ms"))
    assert ok.reason == "health.check{name=\"cache\"} = 'ok' (ok): 3 ms"
    assert evaluate(check, Measurement("ok")).reason == "health.check{name=\"cache\"} = 'ok' (ok)"


# -- what cannot be read ---------------------------------------------------------------------


def test_no_known_shape_names_the_endpoint_the_shapes_tried_and_the_keys_found() -> None:
    nest_error = {"statusCode": 503, "message": "Service Unavailable"}
    assert failure(nest_error, http_status=503) == (
        "GET /health (HTTP 503): no health entries found: tried checks, services, details, "
        "info/error; top-level keys: statusCode, message"
    )
    assert failure({}, path="data.integrations") == (
        "GET /health: no health entries found: tried the configured path data.integrations "
        "(no 'data'), checks, services, details, info/error; top-level keys: none (an empty "
        "object)"
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"checks": ["database", "cache"]}, "checks (an array, not an object)"),
        ({"services": "ok"}, "services (a string, not an object)"),
        ({"details": None}, "details (a null, not an object)"),
        ({"data": {"integrations": 3}}, "data.integrations (a number, not an object)"),
        ({"data": {"other": {}}}, "data.integrations (no 'integrations' in data)"),
        ({"data": [1]}, "data.integrations (data is an array)"),
    ],
)
def test_a_shape_key_that_is_not_a_table_is_named_with_what_it_is(body: Any, said: str) -> None:
    assert said in failure(body, path="data.integrations")


@pytest.mark.parametrize(
    ("body", "kind"),
    [([{"status": "ok"}], "an array"), ("ok", "a string"), (None, "a null"), (200, "a number")],
)
def test_a_body_that_is_not_an_object(body: Any, kind: str) -> None:
    assert failure(body) == f"GET /health: the body is {kind}, not an object with health entries"


def test_an_absent_entry_lists_the_entries_present() -> None:
    body = read_health(TERMINUS_503, endpoint="/auth/health-check")
    assert entry_failure(body, "freebit") == (
        "GET /auth/health-check (shape: terminus): no entry 'freebit'; "
        "entries: database, salesforce, whmcs"
    )
    empty = read_health({"status": "ok", "checks": {}}, endpoint="/health")
    assert entry_failure(empty, "database").endswith("no entry 'database'; entries: none")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["ok"], "is an array, not a status word or an object with 'status'"),
        (True, "is a boolean, not a status word or an object with 'status'"),
        (None, "is a null, not a status word or an object with 'status'"),
        ({"state": "up", "since": 3}, "is an object without 'status' (keys: state, since)"),
        ({"status": 200}, "has a status that is a number, not a word"),
        ({"status": False}, "has a status that is a boolean, not a word"),
        ({"status": {"up": True}}, "has a status that is an object, not a word"),
        ({"status": "  "}, "has an empty status"),
        ("", "has an empty status"),
    ],
)
def test_a_hostile_entry_is_unknown_alone(value: Any, problem: str) -> None:
    body = read_health({"checks": {"database": value, "cache": "ok"}}, endpoint="/health")
    assert (
        entry_failure(body, "database")
        == f"GET /health (shape: checks): entry 'database' {problem}"
    )
    assert body.entry("cache").status == "ok"  # the other entries are still read


def test_a_message_that_is_not_text_is_left_out() -> None:
    body = read_health(
        {"details": {"db": {"status": "down", "message": {"code": "ECONNRESET"}}}},
        endpoint="/health",
    )
    assert body.entry("db").message is None
    assert body.measure("db").note is None


def test_a_huge_body_gives_bounded_reasons_and_evidence() -> None:
    long = "x" * 1_000_000
    details = {f"indicator-{n}-{long}": {"status": "down", "message": long} for n in range(20)}
    details["whmcs"] = {"status": "down " + long, "message": "refused " + long}
    body = read_health({"status": "error", "details": details}, endpoint="/auth/health-check")

    measured = body.measure("whmcs")
    assert isinstance(measured.value, str)
    assert measured.value.startswith("down x")
    assert len(measured.value) <= 60
    assert measured.note is not None
    assert measured.note.startswith("refused x")
    assert len(measured.note) == 200
    assert measured.note.endswith("…")
    check = spec("integration.health", {"integration": "whmcs"}, "not in ['ok', 'degraded']")
    outcome = evaluate(check, measured)
    assert outcome.severity is Severity.CRITICAL
    assert len(shown_reason(outcome.reason, str)) <= MAX_REASON  # as results.json shows it
    assert len(json.dumps(body.evidence())) < 10_000

    absent = entry_failure(body, "salesforce")
    assert len(absent) < 1_500
    assert absent.endswith("and 9 more")  # 21 entries, 12 listed

    many = {f"k{n}": n for n in range(10_000)}
    assert len(failure(many)) < 1_000
    wide = read_health({"checks": {f"e{n}": "ok" for n in range(10_000)}}, endpoint="/health")
    evidence = wide.evidence()
    assert len(evidence["entries"]) == 50
    assert evidence["more_entries"] == 9_950


def test_control_characters_never_reach_a_reason() -> None:
    name = "db\n\x1b[31mred\r\nX-Injected: 1"
    body = read_health(
        {"details": {name: {"status": "down\n", "message": "line one\nline\ttwo\x1b[0m\u2028end"}}},
        endpoint="/health",
    )
    entry = body.entry(name)
    assert entry.status == "down"
    # Escape sequences are removed whole; other control characters become spaces.
    assert entry.message == "line one line two end"
    assert entry_failure(body, "cache").endswith("entries: db red X-Injected: 1")
    assert list(body.evidence()["entries"]) == ["db red X-Injected: 1"]


def test_an_escape_sequence_does_not_make_a_status_word() -> None:
    body = read_health({"checks": {"database": "\x1b[32mok\x1b[0m"}}, endpoint="/health")
    assert body.entries["database"].status is None
    assert entry_failure(body, "database").endswith(
        "entry 'database' has a status with control characters"
    )


# -- a fetched answer ------------------------------------------------------------------------


def snapshot(status: int, body: str, content_type: str = "application/json") -> Snapshot:
    return Snapshot("/auth/health-check", status, body, content_type, elapsed_ms=1.0)


def test_a_503_with_a_known_shape_is_read() -> None:
    body = read_snapshot(snapshot(503, json.dumps(TERMINUS_503)))
    assert body.http_status == 503
    assert statuses(body) == {"database": "ok", "salesforce": "degraded", "whmcs": "down"}
    assert body.evidence()["http_status"] == 503
    assert read_snapshot(snapshot(500, '{"services": {"whmcs": "failing"}}')).shape == "services"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (snapshot(401, '{"statusCode":401}'), "GET /auth/health-check returned HTTP 401"),
        (snapshot(302, ""), "GET /auth/health-check returned HTTP 302"),
        (
            snapshot(503, "<html>503 Service Temporarily Unavailable</html>", "text/html"),
            "GET /auth/health-check returned HTTP 503 with a body that is not JSON (text/html)",
        ),
        (
            snapshot(200, "<html></html>", "text/html"),
            "GET /auth/health-check returned a body that is not JSON (text/html; "
            "unexpected character, expected a JSON value at line 1 column 1)",
        ),
        (
            snapshot(503, '{"statusCode":503,"message":"Service Unavailable"}'),
            "GET /auth/health-check (HTTP 503): no health entries found: tried checks, services, "
            "details, info/error; top-level keys: statusCode, message",
        ),
    ],
)
def test_answers_that_cannot_be_read(answer: Snapshot, message: str) -> None:
    with pytest.raises(MeasurementError) as info:
        read_snapshot(answer)
    assert str(info.value) == message


def test_the_configured_path_is_used_for_a_snapshot() -> None:
    answer = snapshot(200, '{"data": {"integrations": {"whmcs": "up"}}}')
    assert read_snapshot(answer, path="data.integrations").entry("whmcs").status == "ok"


# -- configuration ---------------------------------------------------------------------------


def config(tmp_path: Path, text: str) -> PortalSettings:
    """The portal catalogue's settings (its ``params``) of environment staging."""
    path = tmp_path / "synthetic.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return portal_settings(load_config(path=path, environment="staging", environ={}))


def config_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        config(tmp_path, text)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_guides_entries_are_the_defaults(tmp_path: Path) -> None:
    settings = config(tmp_path, '[environments.staging]\nbase_url = "http://127.0.0.1:9"\n')
    assert settings.health_checks == ["database", "cache"]
    assert settings.integrations == ["database", "whmcs", "salesforce"]
    assert settings.health_entries == {}


def test_entries_and_paths_are_configurable(tmp_path: Path) -> None:
    loaded = config(
        tmp_path,
        """
        [environments.staging]
        base_url = "http://127.0.0.1:9"
        [environments.staging.params]
        health_checks = ["database", "redis", "memory_heap"]
        integrations = []
        [environments.staging.params.health_entries]
        "/auth/health-check" = "data.integrations"
        """,
    )
    assert loaded.health_checks == ["database", "redis", "memory_heap"]
    assert loaded.integrations == []
    assert dict(loaded.health_entries) == {"/auth/health-check": "data.integrations"}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('health_checks = ["database", ""]', "health_checks: an entry name is empty"),
        (
            'integrations = ["whmcs", "whmcs"]',
            "integrations: entry names listed twice: 'whmcs'",
        ),
        ('integrations = "whmcs"', "integrations: input should be a valid list"),
        (
            'health_entries = { "auth/health-check" = "data" }',
            "health_entries: 'auth/health-check': expected an endpoint path like /health",
        ),
        (
            'health_entries = { "/health" = "data..checks" }',
            "health_entries: /health: expected a dotted path to the table of entries, "
            'like "data.integrations"',
        ),
        ('health_entries = { "/health" = "" }', "health_entries: /health: expected a dotted path"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, setting: str, message: str) -> None:
    text = f"[environments.staging.params]\n{setting}\n"
    error = config_error(tmp_path, text)
    assert f"synthetic.toml: environments.staging.params.{message}" in error


def test_a_portal_setting_left_at_the_environment_says_where_it_moved(tmp_path: Path) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text('[environments.staging]\nbullmq_queues = ["email"]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path=path, environment="staging", environ={})
    assert str(info.value) == (
        f"{path}: environments.staging.bullmq_queues: moved to params.bullmq_queues: "
        "a setting of the catalogue, not of the framework"
    )


def test_a_status_of_megabytes_is_no_value_to_compare() -> None:
    outcome = evaluate(spec("health.check", {"name": "db"}, "!= 'ok'"), "x" * 5_000_000)
    assert outcome.severity is Severity.UNKNOWN
    assert outcome.reason == 'health.check{name="db"}: the value is a string of 5000000 characters'
    assert outcome.value is None


def test_a_bad_top_level_param_is_named_where_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        "[tool.synthetic.params]\np95_paths = []\n"
        "[tool.synthetic.environments.staging.params]\np95_sample_size = 0\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        portal_settings(load_config(path=path, environment="staging", environ={}))
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "tool.synthetic.params.p95_paths: list should have at least 1 item" in message
    assert "tool.synthetic.environments.staging.params.p95_sample_size: " in message
