"""The decision engine, run after run: pure data in, notices out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from synthetic.alerts.decide import Context, decide, receivers_for
from synthetic.alerts.settings import AlertSettings, Receiver, Route, Silence
from synthetic.results import CheckResult, Severity
from tests.support.alert_runs import ENV, T0, Runs, check, guide_settings, sent


def test_a_critical_pages_once_per_incident_with_a_stable_dedup_key() -> None:
    runs = Runs()
    first = runs.run(T0, check())
    assert sent(first) == [("pagerduty-oncall", "trigger", "trigger", "critical")]
    alert = first.notices[0].alert
    assert alert.dedup_key == "synthetic/production/health.status"
    assert alert.runbook == "https://runbooks.example/incident-response"
    assert alert.priority == "P1"
    for minute in range(1, 6):
        assert runs.run(T0 + 60 * minute, check()).notices == []


def test_a_breach_must_last_the_sustain_window_across_runs() -> None:
    runs = Runs()
    pending = runs.run(T0, check(sustain_s=120))
    assert pending.notices == []
    assert [s.state for s in pending.statuses] == ["pending"]
    assert runs.run(T0 + 60, check(sustain_s=120)).notices == []
    fired = runs.run(T0 + 120, check(sustain_s=120))
    assert sent(fired) == [("pagerduty-oncall", "trigger", "trigger", "critical")]
    assert fired.notices[0].alert.started_at == "2025-11-24T16:00:00Z"  # when the breach began


def test_a_breach_that_clears_within_the_sustain_window_never_alerts_and_is_forgotten() -> None:
    runs = Runs()
    runs.run(T0, check(sustain_s=300))
    cleared = runs.run(T0 + 60, check(severity=Severity.OK, sustain_s=300))
    assert cleared.notices == []
    assert runs.run(T0 + 400, check(sustain_s=300)).notices == []  # the window starts again
    assert runs.run(T0 + 700, check(sustain_s=300)).notices != []


def test_sustain_from_the_config_wins_over_the_marker() -> None:
    runs = Runs(guide_settings(sustain={"health.*": 600.0}))
    assert runs.run(T0, check(sustain_s=0)).notices == []
    assert runs.run(T0 + 600, check(sustain_s=0)).notices != []


def test_a_warning_that_becomes_critical_escalates_the_same_incident() -> None:
    runs = Runs()
    warned = runs.run(T0, check(severity=Severity.WARNING))
    assert sent(warned) == [("slack-ops", "trigger", "trigger", "warning")]
    escalated = runs.run(T0 + 60, check(severity=Severity.CRITICAL))
    assert sent(escalated) == [("pagerduty-oncall", "escalate", "trigger", "critical")]
    assert escalated.notices[0].alert.dedup_key == warned.notices[0].alert.dedup_key
    # Back to warning: no de-escalation noise; the incident stays critical.
    assert runs.run(T0 + 120, check(severity=Severity.WARNING)).notices == []


def test_resolve_after_n_ok_runs_goes_to_every_receiver_told_and_recovery_to_info() -> None:
    runs = Runs(guide_settings(resolve_after=2))
    runs.run(T0, check(severity=Severity.WARNING))
    runs.run(T0 + 60, check(severity=Severity.CRITICAL))
    assert runs.run(T0 + 120, check(severity=Severity.OK)).notices == []  # one OK is not enough
    resolved = runs.run(T0 + 180, check(severity=Severity.OK))
    assert sorted(sent(resolved)) == [
        ("email-team", "recovery", "resolve", "info"),
        ("pagerduty-oncall", "resolve", "resolve", "critical"),
        ("slack-ops", "resolve", "resolve", "warning"),  # the severity it was told
    ]
    assert all(n.alert.ended_at == "2025-11-24T16:03:00Z" for n in resolved.notices)
    incident = runs.document["incidents"]["health.status"]  # kept for its flap history
    assert (incident["active"], incident["told"]) == (False, {})
    # A new breach afterwards is a new trigger.
    assert sent(runs.run(T0 + 240, check()))[0][1] == "trigger"


def test_an_ok_in_between_breaches_resets_the_resolve_count() -> None:
    runs = Runs(guide_settings(resolve_after=2))
    runs.run(T0, check())
    runs.run(T0 + 60, check(severity=Severity.OK))
    runs.run(T0 + 120, check())
    assert runs.run(T0 + 180, check(severity=Severity.OK)).notices == []


def test_reminders_at_the_receivers_interval_only() -> None:
    slack = Receiver("slack-ops", "slack", url="http://127.0.0.1:1/hook", remind_every_s=3600)
    runs = Runs(guide_settings(receivers={"slack-ops": slack}))
    runs.run(T0, check(severity=Severity.WARNING))
    assert runs.run(T0 + 1800, check(severity=Severity.WARNING)).notices == []
    reminded = runs.run(T0 + 3600, check(severity=Severity.WARNING))
    assert sent(reminded) == [("slack-ops", "remind", "trigger", "warning")]
    assert reminded.notices[0].alert.summary.startswith("still warning")
    assert runs.run(T0 + 4000, check(severity=Severity.WARNING)).notices == []


def test_alertmanager_is_refreshed_every_run_while_firing() -> None:
    am = Receiver("am", "alertmanager", url="http://127.0.0.1:1", remind_every_s=0.0, ttl_s=900)
    settings = guide_settings(
        receivers={"am": am},
        routes=(Route(receiver="am", matchers={"severity": ("critical", "warning")}),),
    )
    runs = Runs(settings)
    assert sent(runs.run(T0, check(severity=Severity.WARNING))) == [
        ("am", "trigger", "trigger", "warning")
    ]
    escalated = runs.run(T0 + 60, check())
    assert sent(escalated) == [("am", "escalate", "trigger", "critical")]
    assert escalated.notices[0].alert.previous_severity == "warning"
    assert sent(runs.run(T0 + 120, check())) == [("am", "remind", "trigger", "critical")]


def test_flapping_sends_one_notice_then_holds_until_it_settles() -> None:
    runs = Runs(guide_settings(flap_changes=4, flap_window_s=3600, resolve_after=1))
    notices = []
    for n in range(10):
        severity = Severity.CRITICAL if n % 2 == 0 else Severity.OK
        notices.append(sent(runs.run(T0 + 60 * n, check(severity=severity))))
    flat = [s for run in notices for s in run]
    kinds = [kind for _, kind, _, _ in flat]
    assert kinds.count("flapping") == 1
    # Before flapping was detected it paged and resolved; after, nothing.
    first_flap = next(i for i, run in enumerate(notices) if any(s[1] == "flapping" for s in run))
    assert all(run == [] for run in notices[first_flap + 1 :])
    # It settles (OK for over an hour): the receivers told are resolved.
    settled = [sent(runs.run(T0 + 600 + 600 * n, check(severity=Severity.OK))) for n in range(12)]
    resolves = [s for run in settled for s in run if s[1] == "resolve"]
    assert resolves == [("pagerduty-oncall", "resolve", "resolve", "critical")]


def test_a_silence_holds_triggers_until_it_ends() -> None:
    silence = Silence(until=T0 + 600, matchers={"metric": ("health.*",)}, reason="maintenance")
    runs = Runs(guide_settings(silences=(silence,)))
    held = runs.run(T0, check())
    assert held.notices == []
    assert [s.state for s in held.statuses] == ["silenced"]
    assert sent(runs.run(T0 + 600, check())) == [
        ("pagerduty-oncall", "trigger", "trigger", "critical")
    ]


def test_a_silence_does_not_hold_back_a_resolve() -> None:
    runs = Runs(guide_settings(resolve_after=1))
    runs.run(T0, check())
    runs.document["silences"] = [
        Silence(until=T0 + 3600, matchers={"environment": (ENV,)}, id="s1").to_json()
    ]
    assert sent(runs.run(T0 + 60, check(severity=Severity.OK))) == [
        ("pagerduty-oncall", "resolve", "resolve", "critical"),
        ("email-team", "recovery", "resolve", "info"),
    ]


def test_stored_silences_expire_and_are_dropped_from_the_document() -> None:
    runs = Runs()
    runs.document["silences"] = [
        Silence(until=T0 + 60, matchers={"check": ("health.status",)}, id="s1").to_json()
    ]
    assert runs.run(T0, check()).notices == []
    assert runs.document["silences"] != []
    assert sent(runs.run(T0 + 60, check()))[0][0] == "pagerduty-oncall"
    assert runs.document["silences"] == []


def bff_outage(severity: Severity = Severity.CRITICAL) -> list[CheckResult]:
    metrics = ["health.status", "endpoint.status", "app.error_rate", "whmcs.queue_size"]
    down = [
        check(m, severity, reason=f"{m}: unreachable: ConnectError", unreachable="bff")
        for m in metrics
    ]
    healthy_db = check("db.size", Severity.OK, reaches=("postgres",))
    return [*down, healthy_db]


def test_when_the_bff_is_unreachable_one_root_alert_pages_and_the_rest_are_inhibited() -> None:
    runs = Runs()
    decision = runs.run(T0, *bff_outage())
    assert sent(decision) == [("pagerduty-oncall", "trigger", "trigger", "critical")]
    alert = decision.notices[0].alert
    assert alert.metric == "target.unreachable"
    assert alert.labels == {"target": "bff"}
    assert "4 checks could not reach it" in alert.summary
    inhibited = sorted(s.key for s in decision.statuses if s.state == "inhibited")
    assert inhibited == ["app.error_rate", "endpoint.status", "health.status", "whmcs.queue_size"]


def test_the_root_alert_resolves_when_the_bff_answers_again() -> None:
    runs = Runs(guide_settings(resolve_after=1))
    runs.run(T0, *bff_outage())
    back = [check(m, Severity.OK) for m in ("health.status", "endpoint.status")]
    resolved = runs.run(T0 + 60, *back)
    assert ("pagerduty-oncall", "resolve", "resolve", "critical") in sent(resolved)
    assert (
        resolved.notices[0].alert.dedup_key
        == 'synthetic/production/target.unreachable{target="bff"}'
    )


def test_one_timeout_among_answers_is_that_checks_incident_not_an_outage() -> None:
    runs = Runs()
    slow = check("endpoint.status", unreachable="bff", reason="endpoint.status: unreachable")
    decision = runs.run(T0, slow, check("health.status", Severity.OK))
    assert [n.alert.metric for n in decision.notices] == ["endpoint.status"]


def test_checks_declaring_a_dependency_are_inhibited_by_its_outage() -> None:
    runs = Runs()
    redis_down = [
        check("redis.memory", reaches=("redis",), unreachable="redis"),
        check("redis.latency", reaches=("redis",), unreachable="redis"),
    ]
    via_bff = check("health.check", Severity.CRITICAL, depends_on=("bff", "redis"))
    decision = runs.run(T0, *redis_down, via_bff)
    assert [n.alert.labels for n in decision.notices] == [{"target": "redis"}]
    assert {s.key for s in decision.statuses if s.state == "inhibited"} == {
        "redis.memory",
        "redis.latency",
        "health.check",
    }


def test_unknown_goes_to_the_warning_route_and_skipped_changes_nothing() -> None:
    runs = Runs()
    blind = runs.run(T0, check(severity=Severity.UNKNOWN, reason="could not measure: KeyError"))
    assert sent(blind) == [("slack-ops", "trigger", "trigger", "warning")]
    assert runs.run(T0 + 60, check(severity=Severity.SKIPPED)).notices == []
    assert runs.document["incidents"]["health.status"]["active"] is True


def test_the_digest_lists_standing_warnings_once_per_period() -> None:
    runs = Runs(guide_settings(digest_every_s=86400))
    runs.run(T0, check("cache.hit_rate", Severity.WARNING), check("db.size", Severity.WARNING))
    assert [k for _, k, _, _ in sent(runs.run(T0 + 3600, check("db.size", Severity.WARNING)))] == []
    digest = runs.run(T0 + 86400, check("db.size", Severity.WARNING))
    assert sent(digest) == [("email-team", "digest", "trigger", "info")]
    assert "2 standing warnings" in digest.notices[0].alert.summary
    assert digest.notices[0].alert.runbook == "https://runbooks.example/incident-response"
    assert runs.run(T0 + 86400 + 60, check("db.size", Severity.WARNING)).notices == []


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"severity": "critical", "component": "database"}, ["db-pager", "pagerduty-oncall"]),
        ({"severity": "critical", "component": "bff"}, ["pagerduty-oncall"]),
        ({"severity": "warning", "environment": "staging"}, ["nowhere"]),  # first match wins
        ({"severity": "warning", "environment": "production"}, ["slack-ops"]),
    ],
)
def test_routes_match_like_alertmanager(
    attributes: dict[str, str], expected: Sequence[str]
) -> None:
    settings = AlertSettings(
        routes=(
            Route("db-pager", {"component": ("database",)}, continue_=True),
            Route("nowhere", {"environment": ("staging",)}),
            Route("pagerduty-oncall", {"severity": ("critical",)}),
            Route("slack-ops", {"severity": ("warning",), "environment": ("prod*",)}),
        )
    )
    assert receivers_for(settings, attributes) == expected


def test_decide_never_changes_the_document_it_is_given() -> None:
    document: dict[str, Any] = {"incidents": {}, "silences": [], "meta": {}}
    decide([check()], document, guide_settings(), Context(ENV, "r", T0))
    assert document == {"incidents": {}, "silences": [], "meta": {}}
