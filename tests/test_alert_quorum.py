"""Several locations, one verdict: the quorum decisions, pure, run after run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from synthetic import cli
from synthetic.alerts.decide import Context, Decision, decide
from synthetic.alerts.quorum import matrix
from synthetic.alerts.schema import AlertsModel, resolve_alerts
from synthetic.alerts.settings import AlertSettings, Quorum
from synthetic.alerts.store import FileAlertStore
from synthetic.config import load_config
from synthetic.results import Severity
from tests.support.alert_runs import ENV, T0, check, guide_settings, sent

EVERY = 60.0


class Places:
    """Runners in several places deciding on one shared document, one after another."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self.document: dict[str, Any] = {"incidents": {}, "silences": [], "meta": {}}
        self.n = 0

    def run(
        self, location: str, at: float, severity: Severity, *, healthy: bool = True, **kw: Any
    ) -> Decision:
        self.n += 1
        context = Context(
            environment=ENV,
            run_id=f"run-{self.n}",
            now=at,
            target=None,
            location=location,
            location_healthy=healthy,
            location_detail="" if healthy else "http://127.0.0.1:9/: connection refused",
        )
        decision = decide([check(severity=severity, **kw)], self.document, self.settings, context)
        self.document = decision.document
        return decision

    def round(self, at: float, states: dict[str, Severity], **kw: Any) -> list[Decision]:
        return [self.run(name, at + n, sev, **kw) for n, (name, sev) in enumerate(states.items())]


def quorum_settings(quorum: int | str = 2, **overrides: Any) -> AlertSettings:
    return guide_settings(
        every_s=EVERY, quorum={"*": Quorum.parse(quorum)}, resolve_after=1, **overrides
    )


OK, CRIT, WARN = Severity.OK, Severity.CRITICAL, Severity.WARNING
PLACES = ("ci-eu", "ci-us", "office")
# A resolve goes to who was paged, a recovery to the info route.
RESOLVED = [
    ("pagerduty-oncall", "resolve", "resolve", "critical"),
    ("email-team", "recovery", "resolve", "info"),
]


def all_sent(decisions: list[Decision]) -> list[tuple[str, str, str, str]]:
    return [s for d in decisions for s in sent(d)]


def test_one_location_alone_pages_nobody_two_page_once_and_all_change_nothing() -> None:
    places = Places(quorum_settings(2))
    assert all_sent(places.round(T0, dict.fromkeys(PLACES, OK))) == []
    one = places.round(T0 + 60, {"ci-eu": CRIT, "ci-us": OK, "office": OK})
    assert all_sent(one) == []
    assert [s.state for s in one[0].statuses if s.key == "health.status"] == ["below-quorum"]
    assert "failing from ci-eu; ok from ci-us and office" in one[0].statuses[0].detail
    two = places.round(T0 + 120, {"ci-eu": CRIT, "ci-us": OK, "office": CRIT})
    assert all_sent(two) == [("pagerduty-oncall", "trigger", "trigger", "critical")]
    page = next(n.alert for d in two for n in d.notices)
    assert page.summary.endswith("(failing from ci-eu and office; ok from ci-us)")
    assert page.locations == {"ci-eu": "critical", "ci-us": "ok", "office": "critical"}
    assert all_sent(places.round(T0 + 180, dict.fromkeys(PLACES, CRIT))) == []
    back = all_sent(places.round(T0 + 240, dict.fromkeys(PLACES, OK)))
    assert back == RESOLVED
    assert all_sent(places.round(T0 + 300, dict.fromkeys(PLACES, OK))) == []


def test_a_share_counts_the_locations_that_reported() -> None:
    places = Places(quorum_settings("50%"))
    places.round(T0, dict.fromkeys(PLACES, OK))
    # 1 of 3 is 33%: below. 2 of 3: a page.
    assert all_sent(places.round(T0 + 60, {"ci-eu": CRIT, "ci-us": OK, "office": OK})) == []
    assert all_sent(places.round(T0 + 120, {"ci-eu": CRIT, "ci-us": CRIT, "office": OK})) != []
    assert [Quorum.parse("50%").required(n) for n in (1, 2, 3, 4)] == [1, 1, 2, 2]


def test_severity_is_what_the_quorum_agrees_on() -> None:
    places = Places(quorum_settings(2))
    decisions = places.round(T0, {"ci-eu": CRIT, "ci-us": WARN, "office": OK})
    assert all_sent(decisions) == [("slack-ops", "trigger", "trigger", "warning")]
    decisions = places.round(T0 + 60, {"ci-eu": CRIT, "ci-us": CRIT, "office": OK})
    assert all_sent(decisions) == [("pagerduty-oncall", "escalate", "trigger", "critical")]


def test_quorum_and_sustain_compose() -> None:
    places = Places(quorum_settings(2))
    breach = {"ci-eu": CRIT, "ci-us": CRIT, "office": OK}
    assert all_sent(places.round(T0, breach, sustain_s=120)) == []
    assert all_sent(places.round(T0 + 60, breach, sustain_s=120)) == []
    # The quorum breaks for a round: the sustain window starts again.
    places.round(T0 + 120, {"ci-eu": CRIT, "ci-us": OK, "office": OK}, sustain_s=120)
    assert all_sent(places.round(T0 + 180, breach, sustain_s=120)) == []
    assert all_sent(places.round(T0 + 240, breach, sustain_s=120)) == []
    fired = all_sent(places.round(T0 + 300, breach, sustain_s=120))
    assert fired == [("pagerduty-oncall", "trigger", "trigger", "critical")]


def test_root_causes_are_inhibited_per_location_before_the_quorum() -> None:
    places = Places(quorum_settings(2))
    down: dict[str, Any] = {"severity": CRIT, "unreachable": "bff"}
    # ci-eu cannot reach the BFF; the others see it answer: nothing pages.
    assert all_sent([places.run("ci-eu", T0, **down)]) == []
    assert all_sent([places.run("ci-us", T0 + 1, OK), places.run("office", T0 + 2, OK)]) == []
    # Unreachable from two places: one root-cause page, the symptom is inhibited.
    decisions = [places.run("ci-eu", T0 + 60, **down), places.run("ci-us", T0 + 61, **down)]
    assert all_sent(decisions) == [("pagerduty-oncall", "trigger", "trigger", "critical")]
    page = next(n.alert for d in decisions for n in d.notices)
    assert page.metric == "target.unreachable"
    assert "failing from ci-eu and ci-us; ok from office" in page.summary


def test_a_quorum_by_component_holds_whichever_location_reports_last() -> None:
    places = Places(guide_settings(every_s=EVERY, quorum={"bff": Quorum.parse(2)}))
    down: dict[str, Any] = {"severity": CRIT, "unreachable": "bff"}
    for minute in range(3):  # ci-eu cannot reach the BFF; the others, reporting after it, can
        at = T0 + 60 * minute
        decisions = [places.run("ci-eu", at, **down)]
        decisions += [places.run("ci-us", at + 1, OK), places.run("office", at + 2, OK)]
        assert all_sent(decisions) == []


def test_a_silent_location_is_named_once_and_left_out() -> None:
    places = Places(quorum_settings(2))
    places.round(T0, dict.fromkeys(PLACES, OK))
    notices = []
    for minute in range(1, 6):  # office stops reporting; the window is 2 x 60 s
        notices += places.round(T0 + 60 * minute, {"ci-eu": OK, "ci-us": OK})
    told = [(n.receiver, n.alert.metric, n.alert.severity) for d in notices for n in d.notices]
    assert told == [("email-team", "location.silent", "info")]
    silent = next(n.alert for d in notices for n in d.notices)
    assert silent.labels == {"location": "office"}
    assert "office has not reported for" in silent.summary
    # Left out: ci-eu failing alone is below the quorum of the two left.
    below = places.run("ci-eu", T0 + 360, CRIT)
    assert sent(below) == []
    assert "not counted: office (silent)" in below.statuses[0].detail
    # Back: its silence resolves, once.
    back = all_sent(places.round(T0 + 400, {"office": OK, "ci-eu": OK, "ci-us": OK}))
    assert back == [("email-team", "resolve", "resolve", "info")]


def test_a_location_silent_for_a_week_is_forgotten_with_its_notice() -> None:
    places = Places(quorum_settings(2))
    places.round(T0, dict.fromkeys(PLACES, OK))
    places.round(T0 + 600, {"ci-eu": OK, "ci-us": OK})
    assert 'location.silent{location="office"}' in places.document["incidents"]
    week = 7 * 86400
    places.round(T0 + week + 60, {"ci-eu": OK, "ci-us": OK})
    assert sorted(places.document["locations"]) == ["ci-eu", "ci-us"]
    assert 'location.silent{location="office"}' not in places.document["incidents"]


def test_an_unhealthy_location_says_so_once_and_pages_nobody() -> None:
    places = Places(quorum_settings(1))
    places.round(T0, dict.fromkeys(PLACES, OK))
    told = []
    for minute in range(1, 4):  # office is cut off: its checks fail, its probe too
        told += all_sent([places.run("office", T0 + 60 * minute, CRIT, healthy=False)])
        told += all_sent(places.round(T0 + 60 * minute + 1, {"ci-eu": OK, "ci-us": OK}))
    assert told == [("email-team", "trigger", "trigger", "info")]
    status = matrix(places.document, places.settings, T0 + 200)
    assert status["locations"]["office"]["healthy"] is False
    assert status["checks"]["health.status"] == {"ci-eu": "ok", "ci-us": "ok", "office": "critical"}
    back = all_sent([places.run("office", T0 + 300, OK)])
    assert back == [("email-team", "resolve", "resolve", "info")]


def test_without_a_location_nothing_of_this_is_recorded() -> None:
    settings = quorum_settings(2)
    context = Context(environment=ENV, run_id="r", now=T0, target=None)
    decision = decide([check()], {"incidents": {}, "silences": [], "meta": {}}, settings, context)
    assert "locations" not in decision.document
    assert sent(decision) == [("pagerduty-oncall", "trigger", "trigger", "critical")]


def test_one_location_alone_decides_as_without_one() -> None:
    places = Places(guide_settings(every_s=EVERY, resolve_after=1))
    assert sent(places.run("ci-eu", T0, CRIT)) == [
        ("pagerduty-oncall", "trigger", "trigger", "critical")
    ]
    assert sent(places.run("ci-eu", T0 + 60, CRIT)) == []
    assert sent(places.run("ci-eu", T0 + 120, OK)) == RESOLVED


def test_the_config_reads_quorum_window_and_probe() -> None:
    settings = resolve_alerts(
        AlertsModel.model_validate(
            {
                "every": "5m",
                "quorum": {"health.*": 2, "bff": "50%"},
                "quorum_window": {"app.*": "30m"},
                "location_probe": "https://example.com/",
            }
        ),
        missing={},
    )
    assert settings.quorum_for("health.status", "health.status", "bff") == Quorum(count=2)
    assert settings.quorum_for("endpoint.status", "x", "bff") == Quorum(percent=50.0)
    assert settings.quorum_for("db.size", "db.size", "database") == Quorum()
    assert settings.window_for("app.error_rate", "app.error_rate", None) == 1800.0
    assert settings.window_for("health.status", "health.status", None) == 600.0
    assert settings.location_probe == ("https://example.com/",)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"quorum": {"health.*": 0}}, "health.*: a quorum is at least 1 location"),
        ({"quorum": {"health.*": "150%"}}, "health.*: expected a count (2) or a share"),
        ({"quorum": {"health.*": "two"}}, "health.*: expected a count (2) or a share"),
        ({"quorum_window": "0s"}, "must be longer than 0s"),
        ({"every": "0s"}, "must be longer than 0s"),
        ({"location_probe": ["ftp://x"]}, "'ftp://x': expected an http:// or https:// URL"),
    ],
)
def test_bad_quorum_settings_are_refused_naming_the_key(
    table: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        AlertsModel.model_validate(table)


def _deciding(checks: list[Any], settings: AlertSettings, context: Context) -> Any:
    return lambda document: (decide(checks, document, settings, context).document, [])


STATUS_CONFIG = """\
default_environment = "prod"

[environments.prod]
base_url = "http://127.0.0.1:9"

[alerts]
every = "5m"
quorum = { "*" = 2 }
"""


def test_alerts_status_shows_each_location_and_its_latest_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "synthetic.toml").write_text(STATUS_CONFIG)
    settings = load_config(path="synthetic.toml", environment="prod").alerts
    store = FileAlertStore(tmp_path / "synthetic-results" / "alerts-prod.json")
    now = time.time()
    seen = [  # location, its check's severity, its probe answered, seconds ago
        ("ci-eu", CRIT, True, 50),
        ("ci-us", OK, True, 40),
        ("office", CRIT, False, 30),
        ("ci-eu", CRIT, True, 20),
    ]
    for n, (name, severity, healthy, ago) in enumerate(seen):
        context = Context(
            ENV, f"r{n}", now - ago, None, location=name, location_healthy=healthy,
            location_detail="" if healthy else "http://127.0.0.1:9/: refused",
        )  # fmt: skip
        store.update(_deciding([check(severity=severity)], settings, context))

    assert cli.main(["alerts", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "alerts of synthetic-results/alerts-prod.json (prod)"
    # ci-eu alone fails among the healthy: below the quorum, no incident; office said it is cut off.
    assert [line.split(":")[0] for line in out[1:3]] == [
        'firing    location.unhealthy{location="office"}',
        "",
    ]
    assert out[3] == "locations (a result counts for 10m):"
    rows = {line.split()[0]: line.split()[1:] for line in out[4:7]}
    assert rows["ci-eu"][:1] == ["healthy"]
    assert rows["ci-us"][:1] == ["healthy"]
    assert rows["office"][:1] == ["unhealthy"]
    header = out.index(next(line for line in out[7:] if line.strip()))
    assert out[header].split() == ["ci-eu", "ci-us", "office"]
    assert out[header + 1].split() == ["health.status", "critical", "ok", "critical"]
    # Each answered the BFF: its root cause is OK from everywhere.
    assert out[header + 2].split() == ['target.unreachable{target="bff"}', "ok", "ok", "ok"]

    assert cli.main(["alerts", "status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["checks"]["health.status"] == {
        "ci-eu": "critical",
        "ci-us": "ok",
        "office": "critical",
    }
    assert [i["key"] for i in data["incidents"]] == ['location.unhealthy{location="office"}']
