"""The outbox across runs: what a receiver that is down costs, and what it gets back."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthetic.alerts import pipeline
from synthetic.alerts.store import NewEntry, open_alert_store
from synthetic.config import Config, load_config
from synthetic.results import CheckResult, RunResult, Severity
from tests.support.alert_receivers import WebhookStandIn, make_alert

T0 = 1_764_000_000.0


def config_for(tmp_path: Path, url: str) -> Config:
    path = tmp_path / "synthetic.toml"
    path.write_text(
        f"""
[alerts.receivers.am]
type = "alertmanager"
url = "{url}"
budget_s = 0.5
timeout_s = 0.2

[[alerts.routes]]
receiver = "am"
severity = ["critical", "warning"]
""",
        encoding="utf-8",
    )
    return load_config(path=path, environment="sandbox", environ={})


def critical_run(n: int) -> RunResult:
    check = CheckResult(
        id="checks/check_queues.py::check_whmcs_queue_size",
        metric="whmcs.queue_size",
        severity=Severity.CRITICAL,
        reason="whmcs.queue_size = 57 requests (critical > 50)",
        priority="P2",
    )
    return RunResult(f"run-{n}", "sandbox", None, "t0", "t1", (check,))


@pytest.mark.slow
def test_a_receiver_that_is_down_keeps_one_entry_per_incident_not_one_per_run(
    tmp_path: Path, refused_port: int
) -> None:
    results = tmp_path / "results"
    down = config_for(tmp_path, f"http://127.0.0.1:{refused_port}")
    for n in range(5):
        report = pipeline.process(
            critical_run(n), config=down, mode="send", results_dir=results, now=T0 + 60 * n
        )
    # Alertmanager is refreshed every run while an incident fires; while it is
    # unreachable those refreshes would pile up: only the first alert waits.
    assert [(e.receiver, e.alert["kind"]) for e in report.pending] == [("am", "trigger")]
    assert report.pending[0].attempts == 5
    assert "connection refused" in (report.pending[0].last_error or "")
    assert any("1 waiting in the outbox for am" in note for note in report.notes)

    with WebhookStandIn() as alertmanager:
        up = config_for(tmp_path, alertmanager.base_url)
        report = pipeline.process(
            critical_run(5), config=up, mode="send", results_dir=results, now=T0 + 300
        )
        assert report.pending == []
        delivered = [(e.alert["kind"], r.status) for e, r in report.deliveries]
        assert delivered == [("trigger", "delivered")]
        report = pipeline.process(
            critical_run(6), config=up, mode="send", results_dir=results, now=T0 + 360
        )
        assert [(e.alert["kind"], r.status) for e, r in report.deliveries] == [
            ("remind", "delivered")
        ]
        posted = [r.path for r in alertmanager.requests]
    assert posted == ["/api/v2/alerts", "/api/v2/alerts"]


def test_a_sending_run_pings_the_heartbeat_and_a_dry_run_does_not(tmp_path: Path) -> None:
    with WebhookStandIn() as switch:
        path = tmp_path / "synthetic.toml"
        path.write_text(f'[alerts]\nheartbeat_url = "{switch.url}"\n', encoding="utf-8")
        config = load_config(path=path, environment="sandbox", environ={})
        results = tmp_path / "results"
        pipeline.process(critical_run(0), config=config, mode="dry-run", results_dir=results)
        assert switch.requests == []
        report = pipeline.process(critical_run(1), config=config, mode="send", results_dir=results)
        assert [(r.method, r.path) for r in switch.requests] == [("GET", switch.path)]
        assert not any("heartbeat" in note for note in report.notes)


def test_a_heartbeat_that_fails_is_a_note_not_a_crash(tmp_path: Path, refused_port: int) -> None:
    path = tmp_path / "synthetic.toml"
    path.write_text(
        f'[alerts]\nheartbeat_url = "http://127.0.0.1:{refused_port}/ping/secret-uuid"\n',
        encoding="utf-8",
    )
    config = load_config(path=path, environment="sandbox", environ={})
    report = pipeline.process(
        critical_run(0), config=config, mode="send", results_dir=tmp_path / "results"
    )
    [note] = [n for n in report.notes if "heartbeat" in n]
    assert note.startswith("alerts: heartbeat not delivered: connection refused")
    assert "secret-uuid" not in note


def test_a_receiver_down_for_long_leaves_a_bounded_outbox_and_dead_letters(
    tmp_path: Path, refused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bounds, made small: 3 waiting per receiver, 4 dead letters.
    monkeypatch.setattr(pipeline, "MAX_WAITING_PER_RECEIVER", 3)
    monkeypatch.setattr(pipeline, "MAX_DEAD_LETTERS", 4)
    results = tmp_path / "results"
    down = config_for(tmp_path, f"http://127.0.0.1:{refused_port}")
    store = open_alert_store(None, environment="sandbox", results_dir=results)
    waiting = [NewEntry("am", make_alert(dedup_key=f"incident-{n}").to_json()) for n in range(8)]
    written = store.update(lambda document: (document, waiting))[1]

    report = pipeline.process(
        critical_run(0), config=down, mode="send", results_dir=results, now=T0
    )

    # 8 old ones and this run's trigger: the 6 oldest go, of which the 4 newest are kept dead.
    assert [e.alert["dedup_key"] for e in report.pending] == [
        "incident-6",
        "incident-7",
        "synthetic/sandbox/whmcs.queue_size",
    ]
    assert [e.id for e in report.dead] == [e.id for e in written[2:6]]
    assert report.dead[0].last_error == "outbox full: 9 alerts waited for am, the oldest dropped"
    assert [n.split(":")[1].strip() for n in report.notes[:2]] == [
        "6 oldest alert(s) for am moved to the dead letters",
        "2 oldest dead letter(s) forgotten",
    ]


def test_an_entry_whose_alert_cannot_be_read_is_a_dead_letter(tmp_path: Path) -> None:
    # A store written by hand or damaged: the run goes on, the entry says why.
    results = tmp_path / "results"
    with WebhookStandIn() as alertmanager:
        config = config_for(tmp_path, alertmanager.base_url)
        store = open_alert_store(None, environment="sandbox", results_dir=results)
        broken = NewEntry("am", {"dedup_key": "x", "action": "trigger"})
        store.update(lambda document: (document, [broken]))
        report = pipeline.process(
            critical_run(0), config=config, mode="send", results_dir=results, now=T0
        )
        posted = len(alertmanager.requests)
    (result,) = [r for e, r in report.deliveries if e.alert["dedup_key"] == "x"]
    assert result.status == "rejected"
    assert result.detail.startswith("the stored alert cannot be read: ")
    assert [e.alert["dedup_key"] for e in report.dead] == ["x"]
    assert posted == 1  # the run's own trigger went out
