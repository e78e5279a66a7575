"""The web edge of `synthetic serve`, in-process (Starlette's test client): routes,
authentication, security headers, masking, and what the page and /metrics say
about a round, compared with the round itself."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import warnings
from pathlib import Path
from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

with warnings.catch_warnings():
    # Starlette 1.x would rather its test client ran on httpx2; httpx works as before.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from synthetic.config import load_config
from synthetic.errors import ConfigError
from synthetic.history import open_history, rows_of
from synthetic.redact import Masker
from synthetic.results import CheckResult, RunResult, Severity
from synthetic.serve.app import Sources, create_app
from synthetic.serve.page import CSS, portal_state
from synthetic.serve.runner import Round
from synthetic.serve.series import Series
from synthetic.serve.settings import ServeSettings, parse_listen
from synthetic.serve.sparkline import Point, sparkline, threshold_levels
from synthetic.serve.view import Board, Incident, SilenceView
from synthetic.text import iso_utc

SECRET = "tok-9f8e7d6c5b4a"
NOW = 1_790_000_000.0


def result(name: str, severity: Severity, value: object, **extra: object) -> CheckResult:
    fields: dict[str, object] = {
        "id": f"checks/check_q.py::check_{name}",
        "metric": f"q.{name}",
        "severity": severity,
        "reason": f"q.{name} = {value}",
        "value": value,
        "unit": "requests",
        "component": "queues",
        "warning": "> 10",
        "critical": "> 50",
        "runbook": "https://wiki.example.com/runbooks/queues",
        "duration_ms": 250.0,
    }
    fields.update(extra)
    return CheckResult(**fields)  # type: ignore[arg-type]


def run_of(*checks: CheckResult, at: float = NOW, errors: tuple[str, ...] = ()) -> RunResult:
    return RunResult(
        run_id=f"r-{at:.0f}",
        environment="production",
        target="https://bff.example.com",
        started_at=iso_utc(at - 1, timespec="milliseconds"),
        finished_at=iso_utc(at, timespec="milliseconds"),
        checks=checks,
        errors=errors,
    )


ROUND = run_of(
    result("whmcs", Severity.CRITICAL, 57, reason=f"q.whmcs = 57 (token {SECRET})"),
    result("email", Severity.OK, 3, labels={"queue": "email"}),
    result("status", Severity.WARNING, "degraded", warning="== 'degraded'", critical=None),
    result("redis", Severity.SKIPPED, None, reason="redis_url is not configured"),
)


def make_client(
    tmp_path: Path,
    *,
    run: RunResult | None = ROUND,
    duration_s: float = 0.5,
    auth: dict[str, str] | None = None,
    **shown: object,
) -> TestClient:
    masker = Masker([SECRET])
    board = Board("production", every_s=30.0)
    history = open_history(None, results_dir=tmp_path)
    series = Series()
    if run is not None:
        board.record(Round(1, run, started=0.0, finished=duration_s), every_s=30.0)
        series.add_run(run)
        history.append(*rows_of(run))
    board.update(
        incidents=(
            Incident(
                key="q.whmcs",
                severity="critical",
                summary="q.whmcs = 57 requests (critical > 50)",
                check_id=ROUND.checks[0].id,
                runbook="https://wiki.example.com/runbooks/queues",
                opened_at=NOW - 600,
            ),
        ),
        **shown,
    )
    sources = Sources(board, history, series, masker, clock=lambda: NOW + 5)
    settings = ServeSettings(**(auth or {}))  # type: ignore[arg-type]
    return TestClient(create_app(sources, settings))


def test_the_status_page_shows_each_check_as_the_round_measured_it(tmp_path: Path) -> None:
    page = make_client(tmp_path).get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    for check in ROUND.checks:
        found = re.search(rf'data-check="{re.escape(check.id)}" data-severity="(\w+)"', html)
        assert found is not None, check.id
        assert found.group(1) == check.severity.value, check.id
    assert 'data-state="critical"' in html
    assert ">CRITICAL</span>Critical" in html
    assert "57 requests" in html
    assert "warning &gt; 10, critical &gt; 50" in html
    assert 'href="https://wiki.example.com/runbooks/queues">runbook' in html
    assert "<script" not in html
    assert 'http-equiv="refresh"' in html
    assert SECRET not in html
    assert "***" in html
    assert 'href="/checks/' + quote(ROUND.checks[0].id, safe="") + '"' in html


def test_every_response_has_a_strict_content_security_policy(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    digest = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
    for path in ("/", "/metrics", "/api/results", "/healthz", "/nowhere", "/checks/none"):
        answer = client.get(path)
        policy = answer.headers["content-security-policy"]
        assert policy.startswith("default-src 'none';"), path
        assert f"style-src 'sha256-{digest}'" in policy, path
        assert "script-src" not in policy, path
        assert "unsafe" not in policy, path
        assert answer.headers["x-content-type-options"] == "nosniff"
    # The page's only <style> is the one the hash allows.
    styles = re.findall(r"<style>(.*?)</style>", client.get("/").text, flags=re.DOTALL)
    assert styles == [CSS]


@pytest.mark.parametrize(
    ("auth", "good", "bad"),
    [
        ({"bearer_token": SECRET}, f"Bearer {SECRET}", "Bearer wrong-token-1234"),
        (
            {"username": "ops", "password": SECRET},
            "Basic " + base64.b64encode(f"ops:{SECRET}".encode()).decode(),
            "Basic " + base64.b64encode(b"ops:wrong-password").decode(),
        ),
    ],
)
def test_credentials_guard_every_route_but_healthz(
    tmp_path: Path, auth: dict[str, str], good: str, bad: str
) -> None:
    client = make_client(tmp_path, auth=auth)
    for path in ("/", "/metrics", "/api/results", "/api/history", "/checks/x"):
        for header in ({}, {"Authorization": bad}):
            answer = client.get(path, headers=header)
            assert answer.status_code == 401, (path, header)
            assert "www-authenticate" in answer.headers
            assert "content-security-policy" in answer.headers
        assert client.get(path, headers={"Authorization": good}).status_code != 401, path
    assert client.get("/healthz").status_code == 200


def test_metrics_carry_each_checks_value_severity_and_the_runners_counters(
    tmp_path: Path,
) -> None:
    text = make_client(tmp_path, duration_s=45.0).get("/metrics").text
    samples = {
        (s.name, s.labels.get("check")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    for check in ROUND.checks:
        if check.severity is Severity.SKIPPED:
            assert ("synthetic_check_severity", check.id) not in samples
            continue
        assert samples[("synthetic_check_severity", check.id)] == check.severity.nagios_code
        if isinstance(check.value, int):
            assert samples[("synthetic_check_value", check.id)] == check.value
    assert samples[("synthetic_rounds_total", None)] == 1
    assert samples[("synthetic_round_overruns_total", None)] == 1  # 45 s of a 30 s period
    assert samples[("synthetic_round_overran", None)] == 1
    assert samples[("synthetic_round_duration_seconds", None)] == 45.0
    assert samples[("synthetic_run_worst_severity", None)] == 2


def test_api_results_is_the_results_json_schema_masked(tmp_path: Path) -> None:
    document = make_client(tmp_path).get("/api/results").json()
    expected = json.loads(json.dumps(Masker([SECRET]).data(ROUND.to_json())))
    for entry in expected["checks"]:
        entry.pop("samples")
    assert document == expected
    assert SECRET not in json.dumps(document)
    assert make_client(tmp_path / "empty", run=None).get("/api/results").status_code == 503


def test_api_history_selects_by_check_and_since(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    whmcs = ROUND.checks[0].id
    rows = client.get("/api/history", params={"check": whmcs, "since": "1h"}).json()["rows"]
    assert [(r["check"], r["severity"], r["value"]) for r in rows] == [(whmcs, "critical", 57)]
    assert SECRET not in json.dumps(rows)
    everything = client.get(
        "/api/history", params={"since": iso_utc(NOW - 60, timespec="milliseconds")}
    ).json()["rows"]
    assert len(everything) == len(ROUND.checks)
    assert client.get("/api/history", params={"since": "2h"}).json()["rows"]
    assert client.get("/api/history", params={"since": str(NOW + 1)}).json()["rows"] == []
    bad = client.get("/api/history", params={"since": "yesterday"})
    assert bad.status_code == 400
    assert "since" in bad.json()["error"]


def test_a_checks_page_shows_its_history_thresholds_and_masked_evidence(
    tmp_path: Path,
) -> None:
    evidence_run = run_of(
        result("whmcs", Severity.CRITICAL, 57, evidence={"header": f"Bearer {SECRET}"}),
    )
    client = make_client(tmp_path, run=evidence_run)
    html = client.get("/checks/" + quote(evidence_run.checks[0].id, safe="")).text
    assert 'data-state="critical"' in html
    assert SECRET not in html
    assert "Bearer ***" in html
    assert re.search(r'<tr data-severity="critical">', html)
    assert 'stroke="#cf222e"' in html
    assert 'stroke="#b58100"' in html
    assert client.get("/checks/" + quote("checks/none.py::x", safe="")).status_code == 404


def test_an_overrun_shows_on_the_page(tmp_path: Path) -> None:
    late = make_client(tmp_path / "late", duration_s=45.0).get("/").text  # of a 30 s period
    assert 'id="overrun">· overran its 30 s period' in late
    assert "1 rounds, 1 overran" in late
    on_time = make_client(tmp_path / "on-time", duration_s=0.5).get("/").text
    assert 'id="overrun"' not in on_time
    assert "overran" not in on_time


def test_silences_and_warnings_show_on_the_page_masked(tmp_path: Path) -> None:
    client = make_client(
        tmp_path,
        silences=(
            SilenceView(
                id="s-1",
                until=NOW + 3600,
                reason=f"migration (ticket {SECRET})",
                matchers={"metric": ("q.whmcs", "bullmq.*")},
                source="store",
            ),
        ),
        history_warning=f"history: cannot append to postgresql://u:{SECRET}@db/h: refused",
        alerts_warning="alerts: cannot read the alert store: ConnectionError",
    )
    html = client.get("/").text
    silences = html.split('<section id="silences">', 1)[1].split("</section>", 1)[0]
    assert "Active silences (1)" in silences
    assert "metric=q.whmcs,bullmq.*" in silences
    assert "until 2026-09-21 15:13:20 UTC" in silences  # NOW + 1 h
    assert "history: cannot append to postgresql://u:***@db/h: refused" in html
    assert "alerts: cannot read the alert store: ConnectionError" in html
    assert SECRET not in html


def test_a_checks_page_links_its_runbook(tmp_path: Path) -> None:
    client = make_client(tmp_path)
    html = client.get("/checks/" + quote(ROUND.checks[0].id, safe="")).text
    assert 'href="https://wiki.example.com/runbooks/queues" id="runbook">runbook' in html
    assert "warning &gt; 10, critical &gt; 50" in html


def test_healthz_says_how_old_the_last_round_is(tmp_path: Path) -> None:
    body = make_client(tmp_path).get("/healthz").json()
    assert body["status"] == "ok"
    assert body["rounds"] == 1
    assert body["last_round_age_s"] == pytest.approx(5.0)


def test_the_portal_state_tells_down_from_critical() -> None:
    critical = run_of(result("whmcs", Severity.CRITICAL, 57))
    down = run_of(result("whmcs", Severity.CRITICAL, None, unreachable="bff"))
    elsewhere = run_of(result("redis", Severity.CRITICAL, None, unreachable="redis"))
    assert [portal_state(r) for r in (critical, down, elsewhere, None)] == [
        "critical", "down", "critical", "unknown"
    ]  # fmt: skip
    degraded = run_of(result("status", Severity.WARNING, "degraded"))
    assert portal_state(degraded) == "warning"
    assert portal_state(run_of(result("e", Severity.OK, 1))) == "ok"
    assert portal_state(run_of(result("e", Severity.OK, 1), errors=("lost",))) == "unknown"


def test_a_sparkline_draws_values_thresholds_and_severities() -> None:
    points = [Point(0, 1, "ok"), Point(10, 60, "critical"), Point(20, None, "unknown")]
    svg = sparkline(points, start=0, end=20, warning=[10], critical=[50], width=200, height=40)
    polyline = re.search(r'<polyline points="([^"]+)"', svg)
    assert polyline is not None
    xs_ys = [tuple(map(float, p.split(","))) for p in polyline.group(1).split()]
    assert [x for x, _ in xs_ys] == [1.0, 100.0]  # t=0 at the left, t=10 at the middle
    assert xs_ys[0][1] > xs_ys[1][1]  # 60 above 1
    ticks = re.findall(r'<rect x="([^"]+)" y="34" width="([^"]+)" height="6" fill="(#\w+)"', svg)
    assert [colour for _, _, colour in ticks] == ["#1a7f37", "#cf222e", "#6e40c9"]
    # each round's severity lasts until the next round: 0..10 and 10..20 are halves
    assert [float(width) for _, width, _ in ticks[:2]] == [99.0, 99.0]
    assert svg.count("<line ") == 2
    assert threshold_levels("> 50", "requests") == [50.0]
    assert threshold_levels("@10:20", None) == [10.0, 20.0]
    assert threshold_levels("== 'degraded'", None) == []
    assert threshold_levels("> 2s", "ms") == [2000.0]


def test_series_keep_recent_rounds_and_fold_older_ones_into_buckets() -> None:
    series = Series(window_s=100.0, buckets=10, recent=2)
    rounds = ((1, "ok", 1), (2, "critical", 9), (3, "ok", 2), (15, "ok", 4), (16, "ok", 5))
    for at, severity, value in rounds:
        series.add_run(run_of(result("q", Severity(severity), value), at=at))
    points = series.points("checks/check_q.py::check_q", now=50)
    # t=0..9 is one bucket (its last value, its worst severity); the last two rounds as they are
    assert [(p.at, p.value, p.severity) for p in points] == [
        (3, 2, "critical"), (15, 4, "ok"), (16, 5, "ok")
    ]  # fmt: skip
    assert series.points("checks/check_q.py::check_q", now=200) == []


def test_serve_binds_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    config = tmp_path / "synthetic.toml"
    config.write_text('[environments.production]\nbase_url = "https://bff.example.com"\n')
    settings = load_config(path=str(config), environment="production").serve
    assert ipaddress.ip_address(settings.host).is_loopback
    assert parse_listen(":9464") == ("127.0.0.1", 9464)
    config.write_text(
        '[serve]\nlisten = "bff.example.com:9464"\n\n'
        '[environments.production]\nbase_url = "https://bff.example.com"\n'
    )
    with pytest.raises(ConfigError, match=r"serve\.listen.*expected an IP address or localhost"):
        load_config(path=str(config), environment="production")


def test_serve_credentials_come_from_variables_and_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVE_TOKEN", SECRET)
    config = tmp_path / "synthetic.toml"
    config.write_text(
        '[serve]\nbearer_token = "${SERVE_TOKEN}"\n\n'
        '[environments.production]\nbase_url = "https://bff.example.com"\n'
    )
    loaded = load_config(path=str(config), environment="production")
    assert loaded.serve.bearer_token == SECRET
    assert loaded.masker.text(f"Authorization: Bearer {SECRET}") == "Authorization: Bearer ***"


def test_the_locations_show_what_each_saw_last(tmp_path: Path) -> None:
    where = {
        "locations": {
            "ci-eu": {"at": NOW, "age_s": 5.0, "healthy": True, "silent": False, "detail": ""},
            "office": {"at": NOW, "age_s": 9.0, "healthy": False, "silent": False, "detail": "x"},
        },
        "checks": {"q.whmcs": {"ci-eu": "critical", "office": "ok"}, "q.email": {"ci-eu": "ok"}},
    }
    html = make_client(tmp_path, locations=where).get("/").text
    table = html.split('<section id="locations">', 1)[1].split("</section>", 1)[0]
    assert "Locations (2)" in table
    assert re.search(r'data-location="office">office <span class="small">unhealthy', table)
    rows = re.findall(r"<tr><td>([^<]+)</td>(.*?)</tr>", table)
    cells = {key: re.findall(r'data-location="([^"]+)">(?:<span class="badge (\w+)">|-)', row)
             for key, row in rows}  # fmt: skip
    assert cells == {
        "q.whmcs": [("ci-eu", "critical"), ("office", "ok")],
        "q.email": [("ci-eu", "ok"), ("office", "")],
    }
    assert '<section id="locations">' not in make_client(tmp_path / "one").get("/").text
