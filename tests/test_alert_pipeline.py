"""Alerting end to end: pytest runs, the config's receivers, what each one received.

Every run is a real pytest session (pytester, in-process) with a
``synthetic.toml`` whose ``[alerts]`` routes as the guide does: critical
pages ``pagerduty-oncall`` (a `PagerDutyStandIn`), warning goes to
``slack-ops`` (a `SlackStandIn`), info to ``email-team`` (a real aiosmtpd
server). The checks return what an environment variable says, so a test
moves a metric between OK, WARNING and CRITICAL from one run to the next
(or switches the sandbox's scenario), then asserts on what reached each
receiver and on ``synthetic-results/alerts.json``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# See tests/test_check_application.py: httpx must keep the httpcore it mapped
# its errors from, across pytester's in-process runs.
import httpcore  # noqa: F401
import pytest

from synthetic import cli
from synthetic.redact import MASK
from synthetic.sandbox import Sandbox
from synthetic.sandbox.processes import LOOPBACK
from tests.support.alert_receivers import (
    Answer,
    Mailbox,
    PagerDutyStandIn,
    SlackStandIn,
    WebhookStandIn,
    smtp_server,
)
from tests.support.alertmanager_server import start_alertmanager_or_fail
from tests.support.catalogue_runs import CHECKS, run_check_file

ROUTING_KEY = "pdRoutingKey0123456789abcdefABCD"
SMTP_PASSWORD = "smtp-s3cret-pass"
SLACK_SECRET = SlackStandIn.path.lstrip("/")
ENVIRONMENT = "test"
RESULTS = "synthetic-results"
VALUES = {"ok": 1, "warning": 20, "critical": 60}

INI = """
[pytest]
python_files = check_*.py
python_functions = check_*
"""

CHECK = """
@pytest.mark.metric(
    "{metric}", unit="requests", component="queues", priority="P2",
    runbook="https://runbooks.example.com/{metric}",
)
@pytest.mark.warning("> 10")
@pytest.mark.critical("> 50")
def check_{name}():
    return float(os.environ["{var}"])
"""


# --- receivers -----------------------------------------------------------------------------


class PagerDuty(PagerDutyStandIn):
    """The PagerDuty stand-in, answering 500 to everything while ``failing``."""

    failing = False

    def handle(self, method: str, path: str, body: Any) -> Answer:
        if self.failing:
            return Answer.json(500, {"status": "error", "message": "internal error"})
        return super().handle(method, path, body)


@dataclass
class Receivers:
    pagerduty: PagerDuty
    slack: SlackStandIn
    hook: WebhookStandIn
    mailbox: Mailbox
    smtp_port: int

    def quiet(self) -> bool:
        """Nothing reached any receiver."""
        return not (
            self.pagerduty.requests
            or self.slack.requests
            or self.hook.requests
            or self.mailbox.envelopes
        )


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receivers]:
    mailbox = Mailbox()
    smtp = smtp_server(mailbox)
    try:
        with (
            PagerDuty(routing_key=ROUTING_KEY) as pagerduty,
            SlackStandIn() as slack,
            WebhookStandIn() as hook,
        ):
            monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
            monkeypatch.setenv("SLACK_OPS_WEBHOOK_URL", slack.url)
            monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
            monkeypatch.delenv("SYNTHETIC_ALERTS", raising=False)
            yield Receivers(pagerduty, slack, hook, mailbox, smtp.port)
    finally:
        smtp.stop()


# --- the project: config, checks, runs ---------------------------------------------------------


def toml(value: Any) -> str:
    """A TOML value: strings, numbers, booleans and lists as JSON spells them; tables inline."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def table(name: str, values: dict[str, Any]) -> list[str]:
    return [f"[{name}]", *(f"{k} = {toml(v)}" for k, v in values.items() if v is not None), ""]


def write_config(
    pytester: pytest.Pytester,
    r: Receivers,
    *,
    alerts: dict[str, Any] | None = None,
    receivers: dict[str, dict[str, Any] | None] | None = None,
    routes: list[dict[str, Any]] | None = None,
    environment: dict[str, Any] | None = None,
) -> Path:
    """``synthetic.toml``: environment ``test``; the guide's three receivers and
    routes, each receiver changed by ``receivers[name]`` (None: left out)."""
    defined: dict[str, dict[str, Any] | None] = {
        "pagerduty-oncall": {
            "type": "pagerduty",
            "url": r.pagerduty.url,
            "routing_key": "${PD_ROUTING_KEY}",
            "timeout_s": 1,
            "budget_s": 1,
        },
        "slack-ops": {
            "type": "slack",
            "url": "${SLACK_OPS_WEBHOOK_URL}",
            "timeout_s": 1,
            "budget_s": 1,
        },
        "email-team": {
            "type": "email",
            "smtp_host": LOOPBACK,
            "smtp_port": r.smtp_port,
            "smtp_tls": "none",
            # No username, so no login (tested in test_alert_delivery.py); the
            # password is here to show it never leaves the process.
            "smtp_password": "${SMTP_PASSWORD}",
            "from": "Synthetic <synthetic@portal.example.com>",
            "to": ["portal-team@example.com"],
            "timeout_s": 2,
            "budget_s": 2,
        },
    }
    for name, changes in (receivers or {}).items():
        current = defined.get(name)
        defined[name] = None if changes is None else {**(current or {}), **changes}
    if routes is None:
        routes = [
            {"receiver": "pagerduty-oncall", "severity": "critical"},
            {"receiver": "slack-ops", "severity": "warning"},
            {"receiver": "email-team", "severity": "info"},
        ]
    lines = [f'default_environment = "{ENVIRONMENT}"', 'checks = ["."]', ""]
    lines += table(
        f"environments.{ENVIRONMENT}",
        {"base_url": "http://127.0.0.1:9", "timeout_s": 2, "retries": 0, **(environment or {})},
    )
    lines += table("alerts", alerts or {})
    for name, values in defined.items():
        if values is not None:
            lines += table(f"alerts.receivers.{name}", values)
    for route in routes:
        lines += ["[[alerts.routes]]", *(f"{k} = {toml(v)}" for k, v in route.items()), ""]
    path = pytester.path / "synthetic.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_checks(pytester: pytest.Pytester, *metrics: str) -> None:
    """One check per metric; its value comes from the variable named by `var`."""
    body = "\n".join(CHECK.format(metric=m, name=m.replace(".", "_"), var=var(m)) for m in metrics)
    pytester.makeini(INI)
    pytester.makepyfile(check_portal="import os\nimport pytest\n" + body)


def var(metric: str) -> str:
    return "LEVEL_" + metric.replace(".", "_").upper()


def level(monkeypatch: pytest.MonkeyPatch, metric: str, severity: str) -> None:
    monkeypatch.setenv(var(metric), str(VALUES[severity]))


@pytest.fixture
def project(pytester: pytest.Pytester, receivers: Receivers) -> pytest.Pytester:
    """A project with one check, ``queue.size``, and the guide's receivers and routes."""
    write_config(pytester, receivers)
    write_checks(pytester, "queue.size")
    return pytester


def run(pytester: pytest.Pytester, *args: str, alerts: str | None = "send") -> pytest.RunResult:
    options = ["--alerts", alerts] if alerts else []
    result = pytester.runpytest(*options, "-p", "no:cacheprovider", *args)
    assert result.ret in (0, 1), result.stdout.str() + result.stderr.str()
    return result


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (pytester.path / RESULTS / "alerts.json").read_text(encoding="utf-8")
    )
    return document


def states(document: dict[str, Any]) -> dict[str, str]:
    return {i["key"]: i["state"] for i in document["incidents"]}


def summaries(events: list[Any]) -> list[str]:
    return [e["payload"]["summary"] for e in events if e["event_action"] == "trigger"]


def headers(messages: list[Any]) -> list[str]:
    return [m["blocks"][0]["text"]["text"] for m in messages]


def outbox(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``synthetic alerts outbox --json``, as a user runs it in the project."""
    capsys.readouterr()
    code = cli.main(["alerts", "outbox", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    document: dict[str, Any] = json.loads(out)
    return document


DEDUP = f"synthetic/{ENVIRONMENT}/queue.size"
HEALTH_CHECKS = CHECKS / "check_health.py"


# --- trigger, sustain, escalate, remind, flap, resolve -------------------------------------------


def test_a_critical_pages_once_over_several_runs(
    project: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    level(monkeypatch, "queue.size", "critical")
    for _ in range(3):
        run(project)

    (event,) = receivers.pagerduty.events
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == DEDUP
    assert event["routing_key"] == ROUTING_KEY
    assert event["links"][0]["href"] == "https://runbooks.example.com/queue.size"
    payload = event["payload"]
    assert payload["severity"] == "critical"
    assert payload["summary"].startswith("CRITICAL P2 queue.size (test): ")
    details = payload["custom_details"]
    assert details["priority"] == "P2"
    assert details["value"] == 60
    assert details["critical_threshold"] == "> 50"
    assert details["check_id"] == "check_portal.py::check_queue_size"
    assert receivers.slack.requests == []
    assert receivers.mailbox.envelopes == []
    last = report(project)
    assert last["mode"] == "send"
    assert states(last) == {"queue.size": "firing"}
    assert last["notices"] == []
    assert last["outbox"] == []


def test_receivers_without_routes_say_that_nothing_goes_anywhere(
    pytester: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A team's own receiver names, and no routes: the guide's routing by severity
    # needs its receiver names, so no alert is sent, and the run says so.
    own = {"type": "slack", "url": "${SLACK_OPS_WEBHOOK_URL}", "timeout_s": 1, "budget_s": 1}
    guide = dict.fromkeys(("pagerduty-oncall", "slack-ops", "email-team"))
    write_config(pytester, receivers, receivers={**guide, "team-chat": own}, routes=[])
    write_checks(pytester, "queue.size")
    level(monkeypatch, "queue.size", "critical")
    result = run(pytester)
    assert receivers.slack.requests == []
    last = report(pytester)
    assert states(last) == {"queue.size": "firing"}
    (note,) = [n for n in last["notes"] if "routes" in n]
    assert "no alert goes anywhere" in note
    assert note in result.stdout.str()  # in the run's alerts summary too
    # The guide's receiver names without routes are routed by severity: no such note.
    write_config(pytester, receivers, routes=[])
    run(pytester)
    assert [n for n in report(pytester)["notes"] if "routes" in n] == []
    assert len(receivers.pagerduty.events) == 1


@pytest.mark.slow
def test_sustain_holds_the_page_until_the_breach_has_lasted(
    pytester: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(pytester, receivers, alerts={"sustain": {"queue.size": "1s"}})
    write_checks(pytester, "queue.size")
    level(monkeypatch, "queue.size", "critical")

    run(pytester)
    assert receivers.pagerduty.requests == []
    assert states(report(pytester)) == {"queue.size": "pending"}
    assert report(pytester)["incidents"][0]["detail"].startswith("pending: breached for ")

    time.sleep(1.1)
    run(pytester)
    (event,) = receivers.pagerduty.events
    assert (event["event_action"], event["dedup_key"]) == ("trigger", DEDUP)
    assert states(report(pytester)) == {"queue.size": "firing"}


def test_a_warning_that_becomes_critical_escalates_to_pagerduty(
    project: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    level(monkeypatch, "queue.size", "warning")
    run(project)
    (message,) = receivers.slack.messages
    assert headers([message]) == [":warning: WARNING P2 queue.size (test)"]
    assert receivers.pagerduty.requests == []
    [notice] = report(project)["notices"]
    assert (notice["receiver"], notice["kind"]) == ("slack-ops", "trigger")
    assert notice["dedup_key"] == DEDUP

    level(monkeypatch, "queue.size", "critical")
    run(project)
    (event,) = receivers.pagerduty.events
    assert (event["event_action"], event["dedup_key"]) == ("trigger", DEDUP)
    assert event["payload"]["severity"] == "critical"
    [notice] = report(project)["notices"]
    assert (notice["receiver"], notice["kind"]) == ("pagerduty-oncall", "escalate")
    assert len(receivers.slack.requests) == 1  # not told again


@pytest.mark.slow
def test_slack_is_reminded_of_a_standing_warning(
    pytester: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(pytester, receivers, receivers={"slack-ops": {"remind_every": "1s"}})
    write_checks(pytester, "queue.size")
    level(monkeypatch, "queue.size", "warning")

    run(pytester)
    assert len(receivers.slack.messages) == 1
    time.sleep(1.1)
    run(pytester)

    first, reminder = receivers.slack.messages
    assert "still warning" not in first["text"]
    assert "still warning: queue.size = 20 requests" in reminder["text"]
    [notice] = report(pytester)["notices"]
    assert (notice["receiver"], notice["kind"]) == ("slack-ops", "remind")
    assert receivers.pagerduty.requests == []


@pytest.mark.slow
def test_a_flapping_check_gets_one_notice_then_nothing(
    pytester: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(pytester, receivers, alerts={"flap_changes": 2})
    write_checks(pytester, "queue.size")
    for severity in ("critical", "ok", "critical", "ok", "critical", "ok"):
        level(monkeypatch, "queue.size", severity)
        run(pytester)

    trigger, flapping = receivers.pagerduty.events  # and nothing after the notice
    assert trigger["dedup_key"] == flapping["dedup_key"] == DEDUP
    assert "flapping" not in trigger["payload"]["summary"]
    assert "flapping: 2 state changes recently" in flapping["payload"]["summary"]
    assert flapping["event_action"] == "trigger"
    last = report(pytester)
    assert states(last) == {"queue.size": "flapping"}
    assert last["incidents"][0]["detail"].endswith("notifications held")
    assert receivers.slack.requests == []
    assert receivers.mailbox.envelopes == []


@pytest.mark.slow
def test_resolve_after_ok_runs_tells_everyone_who_was_told(
    project: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    for severity in ("warning", "critical", "ok"):
        level(monkeypatch, "queue.size", severity)
        run(project)
    # One OK run of the two (resolve_after = 2): nothing resolved yet.
    assert [e["event_action"] for e in receivers.pagerduty.events] == ["trigger"]
    assert len(receivers.slack.messages) == 1
    assert receivers.mailbox.envelopes == []

    run(project)
    trigger, resolve = receivers.pagerduty.events
    assert resolve == {"routing_key": ROUTING_KEY, "dedup_key": DEDUP, "event_action": "resolve"}
    assert trigger["dedup_key"] == DEDUP
    _, resolved = receivers.slack.messages
    assert headers([resolved]) == [":white_check_mark: RESOLVED P2 queue.size (test)"]
    assert "Resolved: recovered: queue.size = 1 requests (ok)" in json.dumps(resolved)
    (mail,) = receivers.mailbox.messages()
    assert mail["To"] == "portal-team@example.com"
    assert str(mail["Subject"]).strip().startswith("RESOLVED P2 queue.size (test): recovered: ")
    last = report(project)
    assert states(last) == {"queue.size": "resolved"}
    assert [(n["receiver"], n["kind"]) for n in last["notices"]] == [
        ("pagerduty-oncall", "resolve"),
        ("slack-ops", "resolve"),
        ("email-team", "recovery"),
    ]
    assert {d["status"] for d in last["deliveries"]} == {"delivered"}

    run(project)  # settled: nobody hears of it again
    assert len(receivers.pagerduty.requests) == 2
    assert len(receivers.slack.requests) == 1 + 1
    assert len(receivers.mailbox.envelopes) == 1


# --- silence, inhibition -----------------------------------------------------------------------


def test_a_silence_holds_the_page_and_removing_it_lets_it_out(
    project: pytest.Pytester,
    receivers: Receivers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["silence", "add", "--metric", "queue.size", "--for", "1h"]) == 0
    added = capsys.readouterr().out
    silence_id = added.split()[1]
    assert silence_id.startswith("s-"), added

    level(monkeypatch, "queue.size", "critical")
    run(project)
    run(project)
    assert receivers.pagerduty.requests == []
    [incident] = report(project)["incidents"]
    assert (incident["state"], incident["detail"][:15]) == ("silenced", "silenced until ")

    capsys.readouterr()
    assert cli.main(["silence", "remove", silence_id]) == 0
    assert capsys.readouterr().out == f"removed silence {silence_id}\n"
    run(project)
    (event,) = receivers.pagerduty.events
    assert (event["event_action"], event["dedup_key"]) == ("trigger", DEDUP)
    assert states(report(project)) == {"queue.size": "firing"}


@pytest.mark.slow
def test_an_unreachable_bff_is_one_page_and_its_checks_are_inhibited(
    pytester: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The catalogue's core health checks against the sandbox, which goes down.
    with Sandbox("healthy") as sandbox:
        config = write_config(
            pytester, receivers, environment={"base_url": sandbox.url, "retry_budget_s": 0}
        )

        def run_catalogue() -> tuple[dict[str, Any], dict[str, Any]]:
            checks, _ = run_check_file(pytester, HEALTH_CHECKS, config, "--alerts", "send")
            alerts: dict[str, Any] = json.loads((pytester.path / "out" / "alerts.json").read_text())
            return checks, alerts

        checks, alerts = run_catalogue()
        assert {c["severity"] for c in checks.values()} == {"ok"}
        assert alerts["incidents"] == []

        sandbox.set_scenario("down")
        for _ in range(2):
            checks, alerts = run_catalogue()
        assert len(checks) >= 3
        assert {c["unreachable"] for c in checks.values()} == {"bff"}
        (event,) = receivers.pagerduty.events
        assert event["payload"]["custom_details"]["metric"] == "target.unreachable"
        assert event["dedup_key"] == f'synthetic/{ENVIRONMENT}/target.unreachable{{target="bff"}}'
        assert (
            f"the BFF is unreachable: {len(checks)} checks could not reach it"
            in (event["payload"]["summary"])
        )
        inhibited = {i["key"] for i in alerts["incidents"] if i["state"] == "inhibited"}
        assert inhibited == {c["metric"] + label(c) for c in checks.values()}
        details = {i["detail"] for i in alerts["incidents"] if i["state"] == "inhibited"}
        assert len(details) == 1
        assert "the BFF is unreachable" in details.pop()
        assert states(alerts)['target.unreachable{target="bff"}'] == "firing"
        assert receivers.slack.requests == []

        sandbox.set_scenario("healthy")
        for _ in range(2):
            _, alerts = run_catalogue()
    _, resolve = receivers.pagerduty.events
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", event["dedup_key"])
    assert states(alerts) == {'target.unreachable{target="bff"}': "resolved"}


def label(check: dict[str, Any]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(check["labels"].items()))
    return f"{{{inner}}}" if inner else ""


# --- delivery problems ---------------------------------------------------------------------------


def test_an_undelivered_alert_waits_in_the_outbox_and_goes_first_next_run(
    pytester: pytest.Pytester,
    receivers: Receivers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # "zeta" is older but sorts last: the next run must send it first all the same.
    write_config(pytester, receivers, receivers={"pagerduty-oncall": {"budget_s": 0.3}})
    write_checks(pytester, "zeta.size", "alpha.size")
    level(monkeypatch, "zeta.size", "critical")
    level(monkeypatch, "alpha.size", "ok")
    receivers.pagerduty.failing = True
    first = run(pytester)

    assert receivers.pagerduty.events == []
    assert len(receivers.pagerduty.requests) >= 1  # tried, within the budget
    [waiting] = outbox(capsys)["outbox"]
    assert waiting["receiver"] == "pagerduty-oncall"
    assert waiting["dedup_key"] == f"synthetic/{ENVIRONMENT}/zeta.size"
    assert waiting["attempts"] == 1
    assert waiting["last_error"].startswith("HTTP 500: ")
    first.stdout.fnmatch_lines(
        ["alerts: 1 waiting in the outbox for pagerduty-oncall (oldest *s): HTTP 500: *"]
    )
    assert report(pytester)["outbox"][0]["id"] == waiting["id"]

    receivers.pagerduty.failing = False
    level(monkeypatch, "alpha.size", "critical")
    run(pytester)
    assert [e["dedup_key"] for e in receivers.pagerduty.events] == [
        f"synthetic/{ENVIRONMENT}/zeta.size",
        f"synthetic/{ENVIRONMENT}/alpha.size",
    ]
    assert outbox(capsys) == {"outbox": [], "dead_letters": []}
    first_delivery = report(pytester)["deliveries"][0]
    assert (first_delivery["id"], first_delivery["status"]) == (waiting["id"], "delivered")
    assert first_delivery["attempts"] == 2  # one in each run


def test_an_unset_variable_keeps_the_alert_until_it_is_set(
    project: pytest.Pytester,
    receivers: Receivers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PD_ROUTING_KEY")
    level(monkeypatch, "queue.size", "critical")
    first = run(project)
    assert first.ret == 1  # the run itself is not broken: CRITICAL, as measured
    assert (project.path / RESULTS / "results.json").is_file()
    assert receivers.pagerduty.requests == []
    notes = [
        line for line in first.stdout.lines if line.startswith("alerts: 1 waiting in the outbox")
    ]
    assert notes == [
        "alerts: 1 waiting in the outbox for pagerduty-oncall (oldest 0s): "
        "environment variable PD_ROUTING_KEY (for routing_key) is not set"
    ]
    [waiting] = outbox(capsys)["outbox"]
    assert waiting["dedup_key"] == DEDUP

    monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
    second = run(project)
    (event,) = receivers.pagerduty.events
    assert (event["event_action"], event["dedup_key"]) == ("trigger", DEDUP)
    assert "PD_ROUTING_KEY" not in second.stdout.str()
    assert outbox(capsys)["outbox"] == []


# --- dry run, off, the gate ---------------------------------------------------------------------


def test_dry_run_writes_masked_payloads_and_sends_nothing(
    pytester: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(pytester, receivers)
    write_checks(pytester, "queue.size", "disk.used")
    level(monkeypatch, "queue.size", "critical")
    level(monkeypatch, "disk.used", "warning")
    folder = pytester.path / RESULTS / "alerts"

    outputs = [run(pytester, alerts=None)]  # dry-run is the default
    written = {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    assert sorted(written) == [  # disk.used, then queue.size
        "000001-slack-ops-trigger.json",
        "000002-pagerduty-oncall-trigger.json",
    ]
    page = written["000002-pagerduty-oncall-trigger.json"]
    assert page["type"] == "pagerduty"
    assert page["request"]["json"]["routing_key"] == MASK
    assert page["request"]["json"]["dedup_key"] == DEDUP
    chat = written["000001-slack-ops-trigger.json"]
    assert SLACK_SECRET not in chat["request"]["url"]
    assert chat["request"]["url"].startswith(receivers.slack.base_url)
    assert report(pytester)["mode"] == "dry-run"

    # Recovered: the resolves and the info route's recovery are written in turn.
    level(monkeypatch, "queue.size", "ok")
    level(monkeypatch, "disk.used", "ok")
    outputs += [run(pytester, alerts=None), run(pytester, alerts=None)]
    names = sorted(p.name for p in folder.glob("*.json"))
    assert [n.split("-", 1)[1] for n in names] == [  # disk.used, then queue.size
        "slack-ops-resolve.json",
        "email-team-recovery.json",
        "pagerduty-oncall-resolve.json",
        "email-team-recovery.json",
    ]
    mail = json.loads(next(p for p in folder.glob("*email-team*")).read_text())["request"]
    assert mail["smtp"] == f"{LOOPBACK}:{receivers.smtp_port}"
    assert mail["subject"].startswith("RESOLVED ")

    assert receivers.quiet()
    assert not (pytester.path / RESULTS / f"alerts-{ENVIRONMENT}.json").exists()
    files = "".join(p.read_text() for p in [*folder.glob("*.json"), folder.parent / "alerts.json"])
    text = files + "".join(o.stdout.str() + o.stderr.str() for o in outputs)
    for secret in (ROUTING_KEY, SLACK_SECRET, SMTP_PASSWORD):
        assert secret not in text
    outputs[0].stdout.fnmatch_lines(
        [
            "*synthetic alerts (dry-run)*",
            "would send slack-ops: trigger warning disk.used",
            "would send pagerduty-oncall: trigger critical queue.size",
            f"2 payload(s) written to {folder}",
        ]
    )


def test_a_dry_run_shows_what_send_would_do_under_a_silence(
    project: pytest.Pytester,
    receivers: Receivers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["silence", "add", "--metric", "queue.size", "--for", "1h"]) == 0
    level(monkeypatch, "queue.size", "critical")
    run(project, alerts=None)
    assert states(report(project)) == {"queue.size": "silenced"}
    assert list((project.path / RESULTS / "alerts").glob("*.json")) == []


@pytest.mark.slow
def test_alerts_off_and_the_gate_send_nothing_even_with_synthetic_alerts_send(
    project: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    level(monkeypatch, "queue.size", "critical")
    run(project, alerts="off")
    results = project.path / RESULTS
    assert (results / "results.json").is_file()
    assert not (results / "alerts.json").exists()
    assert not (results / "alerts").exists()

    monkeypatch.setenv("SYNTHETIC_ALERTS", "send")
    gate = project.run(sys.executable, "-m", "synthetic", "gate", timeout=120)
    assert gate.ret == 1, gate.stdout.str() + gate.stderr.str()
    gate.stdout.fnmatch_lines(["synthetic gate: FAILED (worst: critical, fail-on: critical)"])
    assert not (results / "alerts.json").exists()
    assert not (results / f"alerts-{ENVIRONMENT}.json").exists()
    assert receivers.quiet()

    # The same variable does make a plain run send: the gate ignored it on purpose.
    run(project, alerts=None)
    (event,) = receivers.pagerduty.events
    assert event["dedup_key"] == DEDUP
    assert report(project)["mode"] == "send"


# --- hooks ---------------------------------------------------------------------------------------

PAYLOAD_HOOK = """
def pytest_synthetic_alert_payload(receiver, alert, request, config):
    if receiver.type != "slack":
        return None
    text = f"[ops-bot] {alert.metric} is {alert.severity}"
    body = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    return {**request, "json": body}
"""

SEND_HOOK = """
import os
import httpx
from synthetic.alerts.delivery import DeliveryResult

def pytest_synthetic_alert_send(receiver, alert, request, config):
    if receiver.type != "custom":
        return None
    if os.environ.get("PLUGIN_DOWN"):
        return DeliveryResult("failed", "plugin backend down", 1)
    answer = httpx.post(receiver.url, json={"via": "conftest", "document": request["json"]})
    return DeliveryResult("delivered", f"HTTP {answer.status_code} via the conftest", 1)
"""


def test_a_payload_hook_changes_what_slack_receives(
    project: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makeconftest(PAYLOAD_HOOK)
    write_checks(project, "queue.size", "disk.used")
    level(monkeypatch, "queue.size", "warning")
    level(monkeypatch, "disk.used", "critical")
    run(project)
    assert receivers.slack.messages == [
        {
            "text": "[ops-bot] queue.size is warning",
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "[ops-bot] queue.size is warning"},
                }
            ],
        }
    ]
    (event,) = receivers.pagerduty.events  # other receivers get the usual body
    assert event["payload"]["summary"].startswith("CRITICAL P2 disk.used (test): ")


def test_a_custom_receiver_is_delivered_by_the_send_hook(
    pytester: pytest.Pytester,
    receivers: Receivers,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_config(
        pytester,
        receivers,
        receivers={"ops-plugin": {"type": "custom", "url": receivers.hook.url}},
        routes=[{"receiver": "ops-plugin", "severity": "critical"}],
    )
    write_checks(pytester, "queue.size")
    pytester.makeconftest(SEND_HOOK)
    level(monkeypatch, "queue.size", "critical")

    monkeypatch.setenv("PLUGIN_DOWN", "1")
    run(pytester)
    assert receivers.hook.requests == []
    [waiting] = outbox(capsys)["outbox"]
    assert (waiting["receiver"], waiting["last_error"]) == ("ops-plugin", "plugin backend down")

    monkeypatch.delenv("PLUGIN_DOWN")
    result = run(pytester)
    (document,) = receivers.hook.documents
    assert document["via"] == "conftest"
    sent = document["document"]
    assert sent["schema"] == "synthetic.alert/v1"
    assert (sent["dedup_key"], sent["action"], sent["metric"]) == (DEDUP, "trigger", "queue.size")
    result.stdout.fnmatch_lines(
        ["delivered ops-plugin: trigger critical queue.size (HTTP 200 via the conftest)"]
    )
    assert outbox(capsys)["outbox"] == []
    assert receivers.pagerduty.requests == []


# --- a real Alertmanager -------------------------------------------------------------------------


@pytest.mark.slow
def test_alertmanager_holds_the_alert_while_it_fires_and_drops_it_on_resolve(
    pytester: pytest.Pytester, receivers: Receivers, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = receivers.hook
    with start_alertmanager_or_fail(hook.url) as am:
        write_config(
            pytester,
            receivers,
            receivers={"alertmanager": {"type": "alertmanager", "url": am.url, "budget_s": 5}},
            routes=[{"receiver": "alertmanager", "severity": "critical"}],
        )
        write_checks(pytester, "queue.size")
        level(monkeypatch, "queue.size", "critical")
        run(pytester)

        (active,) = am.alerts()
        assert active["status"]["state"] == "active"
        assert active["labels"]["alertname"] == "queue_size"
        assert active["labels"]["environment"] == ENVIRONMENT
        assert active["labels"]["severity"] == "critical"
        assert active["annotations"]["runbook_url"] == "https://runbooks.example.com/queue.size"
        hook.wait_for(lambda docs: any(d["status"] == "firing" for d in docs))

        level(monkeypatch, "queue.size", "ok")
        run(pytester)
        assert len(am.alerts()) == 1  # one OK run of two: still firing
        run(pytester)
        assert am.alerts() == []
        documents = hook.wait_for(lambda docs: any(d["status"] == "resolved" for d in docs))
    statuses = [(d["status"], d["alerts"][0]["labels"]["alertname"]) for d in documents]
    assert statuses[0] == ("firing", "queue_size")
    assert statuses[-1] == ("resolved", "queue_size")
    assert receivers.pagerduty.requests == []
