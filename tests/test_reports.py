"""The history reports against a generated day with known properties
(`tests.support.report_histories`), on SQLite and on a real PostgreSQL.

Expectations come from the construction of the history (which rounds were
critical, when the spikes started), computed here, never by the report code;
the replay of the alert rules is compared with the pipeline's own `decide`
run round by round over the same results.
"""

from __future__ import annotations

import datetime
import json
import math
import statistics
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from synthetic.alerts.decide import Context, decide
from synthetic.alerts.settings import AlertSettings
from synthetic.config import load_config
from synthetic.history import HistoryStore, open_history
from synthetic.reports.command import build_report
from synthetic.reports.data import Coverage, Period, Point, Series, coverage_of, load_series
from synthetic.reports.inputs import Inputs, WorkingHours
from synthetic.reports.render import render
from synthetic.reports.replay import replay
from synthetic.sandbox.postgres_server import PostgresServer
from tests.support import report_histories as h
from tests.support.report_histories import RECEIVERS

UNTIL = h.at(h.ROUNDS - 1) + 1.0


@pytest.fixture(scope="module")
def alerts(tmp_path_factory: pytest.TempPathFactory) -> AlertSettings:
    path = tmp_path_factory.mktemp("config") / "synthetic.toml"
    path.write_text(RECEIVERS)
    return load_config(path=path, environment="sandbox").alerts


@pytest.fixture(scope="module")
def truth() -> h.Truth:
    return h.truth()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[HistoryStore]:
    store = open_history(None, results_dir=tmp_path)
    yield store
    store.close()


@pytest.fixture
def postgres_store(postgres_server: PostgresServer) -> Iterator[HistoryStore]:
    name = f"reports_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    store = open_history(
        postgres_server.admin_dsn.rsplit("/", 1)[0] + f"/{name}", results_dir=Path("unused")
    )
    yield store
    store.close()
    with psycopg.connect(postgres_server.admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def inputs(request: pytest.FixtureRequest, truth: h.Truth, alerts: AlertSettings) -> Inputs:
    store: HistoryStore = request.getfixturevalue(f"{request.param}_store")
    h.write_history(store, truth)
    period = Period(UNTIL - 90 * 86400, UNTIL)
    series = load_series(store, period, environment=h.ENV)
    return Inputs(
        environment=h.ENV,
        period=period,
        coverage=coverage_of(store, series, period, environment=h.ENV),
        series=series,
        specs=h.SPECS,
        alerts=alerts,
        hours=WorkingHours("UTC", 9, 18),
        objective=0.999,
    )


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered)) - 1]


def by_check(report_data: dict, check: str) -> dict:  # type: ignore[type-arg]
    return next(c for c in report_data["checks"] if c["check"] == check)


def outside(i: int) -> bool:
    moment = datetime.datetime.fromtimestamp(h.at(i), datetime.UTC)
    return moment.weekday() >= 5 or not 9 <= moment.hour < 18


def test_fatigue_gives_the_constructed_numbers_and_suggestions(inputs: Inputs) -> None:
    report = build_report("fatigue", inputs)
    data = json.loads(render(report, "json"))
    assert data["schema"] == "synthetic.report.fatigue/v1"
    assert data["coverage"]["rounds"] == h.ROUNDS

    noisy = by_check(data, h.NOISY)
    # 12 spikes + the 20-round incident + the escalating one.
    assert noisy["incidents"] == 14
    # Each spike: CRITICAL at s and s+1, OK at s+2 and s+3: resolved at s+3.
    spike_ttr = 3 * h.STEP
    real_ttr = (h.REAL.stop + 1 - h.REAL.start) * h.STEP  # resolved at the 2nd OK round
    escalating_ttr = (h.ESCALATING_CRIT.stop + 1 - h.ESCALATING_WARN.start) * h.STEP
    times = sorted([spike_ttr] * 12 + [real_ttr, escalating_ttr])
    assert noisy["resolve_median_s"] == statistics.median(times)
    assert noisy["resolve_p90_s"] == nearest_rank(times, 0.9)
    assert noisy["resolved_within_10m_share"] == pytest.approx(12 / 14)
    assert noisy["escalations"] == 1
    # Pages: each spike's trigger, the real one's, the escalation.
    assert noisy["pages"] == 14
    # Per incident a trigger, a resolve and the info route's recovery; the
    # escalating one: trigger (warning), escalate, two resolves, a recovery.
    assert noisy["notifications"] == 13 * 3 + 5
    told_rounds = [*h.SPIKES, h.REAL.start, h.ESCALATING_WARN.start, h.ESCALATING_CRIT.start]
    assert noisy["outside_working_hours"] == sum(map(outside, told_rounds))
    assert noisy["flapping_episodes"] == 0
    assert noisy["suggestions"] == [
        "sustain 2m would have prevented 12 of 14 alerts and delayed none of the 2 real "
        "incidents by more than 2m"
    ]

    flappy = by_check(data, h.FLAPPY)
    assert flappy["flapping_episodes"] == len(h.FLAPS)
    assert flappy["incidents"] == len(h.FLAPS)
    assert flappy["suggestions"] == [
        "flapped 2 times: no sustain up to 30m would have kept its real incidents; "
        "look at what makes it change state"
    ]

    tight = by_check(data, h.TIGHT)
    decades = h.ROUNDS // 10
    assert tight["incidents"] == decades
    assert tight["resolved_within_10m_share"] == 1.0
    p95 = nearest_rank([float(v) for v in h.truth().values[h.TIGHT]], 0.95)
    assert tight["suggestions"] == [
        f"sustain 10m would have prevented {decades} of {decades} alerts and there was no "
        "real incident (none lasted over 10m)",
        f"warning > 200 fires 80% of the time; p95 of the value is {p95:g} ms",
    ]
    # Ranked by noise: the tight one, then the noisy one, then the flapping one.
    ranked = [c["check"] for c in data["checks"]]
    assert ranked[:3] == [h.TIGHT, h.NOISY, h.FLAPPY]
    assert h.LOOSE not in ranked  # never alerted

    receivers = {r["receiver"]: r for r in data["receivers"]}
    assert receivers["pagerduty-oncall"]["escalations"] == 1
    assert any("not recorded" in note.lower() for note in data["not_recorded"])


def test_thresholds_find_the_loose_and_the_tight(inputs: Inputs, truth: h.Truth) -> None:
    data = json.loads(render(build_report("thresholds", inputs), "json"))
    loose = by_check(data, h.LOOSE)
    values = [float(v) for v in truth.values[h.LOOSE]]
    assert (loose["p50"], loose["p95"], loose["p99"], loose["max"]) == (
        nearest_rank(values, 0.5),
        nearest_rank(values, 0.95),
        nearest_rank(values, 0.99),
        max(values),
    )
    assert loose["verdict"] == "too loose"
    assert [(lv["level"], lv["crossed"], lv["verdict"]) for lv in loose["levels"]] == [
        ("warning", 0, "too loose"),
        ("critical", 0, "too loose"),
    ]
    assert loose["levels"][1]["advice"] == (
        "critical > 1000 never came near: the highest value was 120 requests (12% of the limit)"
    )
    tight = by_check(data, h.TIGHT)
    crossed = sum(1 for v in truth.values[h.TIGHT] if float(v) > 200)
    assert tight["levels"][0]["crossed"] == crossed
    assert tight["levels"][0]["share"] == pytest.approx(crossed / h.ROUNDS)
    assert tight["verdict"] == "too tight"
    noisy = by_check(data, h.NOISY)
    assert [lv["crossed"] for lv in noisy["levels"]] == [
        len(truth.rounds(h.NOISY, "critical")) + len(truth.rounds(h.NOISY, "warning")),
        len(truth.rounds(h.NOISY, "critical")),
    ]
    assert noisy["verdict"] == "ok"
    assert h.OUTAGE not in [c["check"] for c in data["checks"]]  # no numeric value
    assert data["coverage"]["share_of_period"] == pytest.approx(
        (UNTIL - h.at(0)) / (90 * 86400), abs=1e-4
    )


def test_uptime_gives_the_43_minute_outage_and_the_budget(inputs: Inputs, truth: h.Truth) -> None:
    report = build_report("uptime", inputs)
    data = json.loads(render(report, "json"))
    outage = [i for i in data["incidents"] if i["check"] == h.OUTAGE]
    assert len(outage) == 1
    assert outage[0]["duration_s"] == 43 * 60
    assert outage[0]["priority"] == "P1"
    assert outage[0]["acknowledged_after_s"] is None
    health = by_check(data, h.OUTAGE)
    assert health["7d"] == {"availability": (h.ROUNDS - 43) / h.ROUNDS, "rounds": h.ROUNDS}
    down = set().union(*(truth.rounds(c, "critical") for c in h.SPECS))
    bff_down = set().union(
        *(truth.rounds(c, "critical") for c, s in h.SPECS.items() if s.component == "bff")
    )
    bff = next(c for c in data["components"] if c["component"] == "bff")
    assert bff["30d"]["availability"] == pytest.approx((h.ROUNDS - len(bff_down)) / h.ROUNDS)
    overall = data["overall"]
    assert overall["unavailable_rounds"] == len(down)
    assert overall["budget_spent"] == pytest.approx(len(down) / (0.001 * h.ROUNDS), abs=1e-4)
    last_6h = [i for i in range(h.ROUNDS) if h.at(i) >= UNTIL - 6 * 3600]
    six_hour_down = sum(1 for i in last_6h if i in down)
    assert overall["burn_rates"]["6h"] == pytest.approx(
        six_hour_down / len(last_6h) / 0.001, abs=1e-3
    )
    assert overall["burn_rates"]["1h"] == 0
    assert overall["burning_fast"] is False
    assert any("acknowledge" in note for note in data["not_recorded"])
    text = render(report, "text")
    assert "43m" in text
    assert "of the 90d asked" in text


def test_the_replay_sends_what_the_pipeline_decides(truth: h.Truth, alerts: AlertSettings) -> None:
    # Ground truth: the pipeline's own decisions, run by run over the same results.
    document: dict = {}  # type: ignore[type-arg]
    decided: dict[str, list[tuple[float, str, str, str]]] = {}
    for i in range(h.ROUNDS):
        run = h.run_of(i, truth)
        decision = decide(run.checks, document, alerts, Context(h.ENV, run.run_id, h.at(i)))
        document = decision.document
        for notice in decision.notices:
            key = notice.alert.dedup_key.split("/", 2)[-1]
            decided.setdefault(key, []).append(
                (h.at(i), notice.receiver, notice.alert.kind, notice.alert.severity)
            )
    period = Period(h.T0, UNTIL)
    inputs = Inputs(h.ENV, period, Coverage(None, None, 0), [], h.SPECS, alerts)
    for check, s in h.SPECS.items():
        series = Series(check, s.display_name, s.metric, "", s.unit)
        series.points = [Point(h.at(i), truth.severities[check][i], None) for i in range(h.ROUNDS)]
        done = replay(series.points, inputs.rules(series))
        replayed = sorted((n.at, n.receiver, n.kind, n.severity) for n in done.notifications)
        assert replayed == sorted(decided.get(s.display_name, [])), check


def test_markdown_escapes_pipes_and_html_escapes_markup(inputs: Inputs) -> None:
    report = build_report("fatigue", inputs)
    markdown = render(report, "markdown")
    assert markdown.startswith("## Alert fatigue (production)")
    assert "| check | incidents |" in markdown
    page = render(report, "html")
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_the_runbooks_the_catalogue_names_are_read_from_its_source() -> None:
    import re

    from synthetic.reports.runbooks import runbook_names

    checks = Path(__file__).resolve().parent.parent / "checks"
    written = set()
    for path in checks.glob("check_*.py"):
        written |= set(re.findall(r'runbook="([^"]+)"', path.read_text()))
    assert runbook_names(checks) == sorted(written)
    assert len(written) >= 4


def test_the_repositorys_config_never_pages_for_a_runbook_link() -> None:
    from synthetic.alerts.decide import receivers_for

    config = load_config(
        path=Path(__file__).resolve().parent.parent / "pyproject.toml", environment="sandbox"
    )
    for severity in ("critical", "warning", "info"):
        attributes = {
            "metric": "runbook.link",
            "severity": severity,
            "environment": "production",
            "component": "docs",
            "priority": "P4",
            "check": "checks/check_runbooks.py::check_runbook_link",
        }
        assert receivers_for(config.alerts, attributes) == ["email-team"]
    health = {"metric": "health.status", "severity": "critical", "environment": "production"}
    assert receivers_for(config.alerts, health) == ["pagerduty-oncall"]


def test_uptime_windows_longer_than_the_period_are_not_computed(inputs: Inputs) -> None:
    from dataclasses import replace

    week = replace(inputs, period=Period(UNTIL - 7 * 86400, UNTIL))
    data = json.loads(render(build_report("uptime", week), "json"))
    health = by_check(data, h.OUTAGE)
    assert health["7d"]["rounds"] == h.ROUNDS
    assert health["30d"] == health["90d"] == {"availability": None, "rounds": 0}
