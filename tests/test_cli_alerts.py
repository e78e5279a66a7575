"""``synthetic alerts outbox|test`` and ``synthetic silence add|list|remove``, as a user runs them.

In-process (`synthetic.cli.main`) in a project directory with a
``synthetic.toml``; ``alerts test`` talks to the loopback stand-ins of
tests/support/alert_receivers.py over real sockets.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from synthetic import cli
from synthetic.alerts.store import FileAlertStore, NewEntry
from tests.support.alert_receivers import (
    Answer,
    Fault,
    PagerDutyStandIn,
    SlackStandIn,
    make_alert,
)

ROUTING_KEY = "cliRoutingKey0123456789abcdefABC"
ENVIRONMENT = "test"
STORE = Path("synthetic-results") / f"alerts-{ENVIRONMENT}.json"
PAST = "2020-01-01T00:00:00+00:00"

CONFIG = """\
default_environment = "test"

[environments.test]
base_url = "http://127.0.0.1:9"

[runbooks]
base_url = "https://portal.example.com/docs/runbooks"

[alerts.receivers.pagerduty-oncall]
type = "pagerduty"
url = "{pagerduty}"
routing_key = "${{PD_ROUTING_KEY}}"
timeout_s = 1
budget_s = 1

[alerts.receivers.slack-ops]
type = "slack"
url = "{slack}"
timeout_s = 1
budget_s = 1

[alerts.receivers.webhook-unset]
type = "webhook"
url = "${{UNSET_HOOK_URL}}"

[alerts.receivers.opsgenie]
type = "custom"

[[alerts.routes]]
receiver = "pagerduty-oncall"
severity = "critical"

[[alerts.routes]]
receiver = "slack-ops"
severity = "warning"

[[alerts.silences]]
until = "2999-01-01T00:00:00Z"
metric = "disk.*"
reason = "decommissioned"
"""


@dataclass
class Project:
    path: Path
    pagerduty: PagerDutyStandIn
    slack: SlackStandIn


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    with PagerDutyStandIn(routing_key=ROUTING_KEY) as pagerduty, SlackStandIn() as slack:
        (tmp_path / "synthetic.toml").write_text(
            CONFIG.format(pagerduty=pagerduty.url, slack=slack.url), encoding="utf-8"
        )
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("PD_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.delenv("UNSET_HOOK_URL", raising=False)
        yield Project(tmp_path, pagerduty, slack)


@dataclass
class Done:
    code: int
    out: str
    err: str


def synthetic(capsys: pytest.CaptureFixture[str], *args: str) -> Done:
    capsys.readouterr()
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return Done(code, out, err)


def one_error_line(done: Done, command: str) -> str:
    """The error of a command that failed: one line on stderr, nothing on stdout."""
    assert done.out == ""
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith(f"synthetic {command}: error: ")
    return lines[0]


# --- alerts outbox -------------------------------------------------------------------------------


def fill_outbox(project: Project) -> list[str]:
    """Three entries 90 s old: one failed twice, one never tried, one rejected for good."""
    store = FileAlertStore(project.path / STORE)
    created = time.time() - 90
    alerts = [
        ("pagerduty-oncall", make_alert(dedup_key="synthetic/test/queue.size")),
        (
            "pagerduty-oncall",
            make_alert(dedup_key="synthetic/test/disk.used", action="resolve", kind="resolve"),
        ),
        ("slack-ops", make_alert(dedup_key="synthetic/test/cache.hits", severity="warning")),
    ]
    store.update(
        lambda document: (document, [NewEntry(r, a.to_json()) for r, a in alerts]), now=created
    )
    first, _, third = (entry.id for entry in store.outbox())
    for error in ("HTTP 500: internal_error; 2 attempts in 0.3 s", "connection refused"):
        assert store.claim(first, owner="run-1", lease_s=30)
        store.failed(first, owner="run-1", error=error, permanent=False, now=created + 1)
    assert store.claim(third, owner="run-1", lease_s=30)
    store.failed(third, owner="run-1", error="HTTP 400: invalid_payload", permanent=True, now=0)
    return [entry.id for entry in store.outbox()] + [third]


def test_outbox_lists_what_waits_with_age_attempts_and_last_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_outbox(project)
    done = synthetic(capsys, "alerts", "outbox")
    assert (done.code, done.err) == (0, "")
    lines = done.out.splitlines()
    assert lines[0] == f"outbox of {STORE}: 2 waiting, 1 rejected"
    assert lines[1].startswith(
        "waiting  #1 pagerduty-oncall trigger synthetic/test/queue.size age "
    )
    assert lines[1].endswith(", 2 attempt(s): connection refused")
    age = int(lines[1].split(" age ")[1].split("s,")[0])
    assert 89 <= age <= 120
    assert lines[2].startswith("waiting  #2 pagerduty-oncall resolve synthetic/test/disk.used age ")
    assert lines[2].endswith(", 0 attempt(s)")
    assert lines[3].startswith("rejected #3 slack-ops trigger synthetic/test/cache.hits age ")
    assert lines[3].endswith(", 1 attempt(s): HTTP 400: invalid_payload")
    assert len(lines) == 4


def test_outbox_json(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    first, second, rejected = fill_outbox(project)
    done = synthetic(capsys, "alerts", "outbox", "--json")
    assert done.code == 0
    document = json.loads(done.out)
    assert [
        (r["id"], r["seq"], r["receiver"], r["kind"], r["action"]) for r in document["outbox"]
    ] == [
        (first, 1, "pagerduty-oncall", "trigger", "trigger"),
        (second, 2, "pagerduty-oncall", "resolve", "resolve"),
    ]
    waiting = document["outbox"][0]
    assert (waiting["attempts"], waiting["last_error"]) == (2, "connection refused")
    assert waiting["dedup_key"] == "synthetic/test/queue.size"
    assert 89 <= waiting["age_s"] <= 120
    assert (document["outbox"][1]["attempts"], document["outbox"][1]["last_error"]) == (0, None)
    [dead] = document["dead_letters"]
    assert (dead["id"], dead["receiver"], dead["attempts"]) == (rejected, "slack-ops", 1)
    assert dead["last_error"] == "HTTP 400: invalid_payload"


def test_an_empty_outbox(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    done = synthetic(capsys, "alerts", "outbox")
    assert (done.code, done.out) == (0, f"outbox of {STORE}: 0 waiting, 0 rejected\n")
    done = synthetic(capsys, "alerts", "outbox", "--json")
    assert json.loads(done.out) == {"outbox": [], "dead_letters": []}


def test_outbox_of_another_results_dir(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_outbox(project)
    done = synthetic(capsys, "alerts", "outbox", "--json", "--results-dir", "elsewhere")
    assert json.loads(done.out) == {"outbox": [], "dead_letters": []}


# --- alerts test ---------------------------------------------------------------------------------


def test_a_test_page_and_its_resolve_reach_pagerduty(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    done = synthetic(capsys, "alerts", "test", "--receiver", "pagerduty-oncall")
    assert done.code == 0, done.out + done.err
    trigger, resolve = project.pagerduty.events
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"].startswith("synthetic/test/test/")
    payload = trigger["payload"]
    assert payload["severity"] == "critical"  # what the routes send this receiver
    assert payload["summary"].startswith("[TEST] CRITICAL P4 synthetic.test (test): Test alert")
    assert payload["custom_details"]["test"] is True
    assert trigger["links"][0]["href"] == (
        "https://portal.example.com/docs/runbooks/incident-response"
    )
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "dedup_key": trigger["dedup_key"],
        "event_action": "resolve",
    }
    lines = done.out.splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "pagerduty-oncall: test trigger: delivered",
        "pagerduty-oncall: test resolve: delivered",
    ]
    assert ROUTING_KEY not in done.out
    assert project.slack.requests == []


def test_a_test_message_reaches_slack_labelled_as_a_test(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    done = synthetic(capsys, "alerts", "test", "--receiver", "slack-ops")
    assert done.code == 0, done.out + done.err
    trigger, resolve = project.slack.messages
    assert trigger["blocks"][0]["text"]["text"] == (
        ":test_tube: :warning: [TEST] WARNING P4 synthetic.test (test)"
    )
    assert "This is a test alert (synthetic alerts test), not an incident." in json.dumps(trigger)
    assert resolve["blocks"][0]["text"]["text"].startswith(
        ":test_tube: :white_check_mark: [TEST] RESOLVED"
    )
    assert project.pagerduty.requests == []


def test_a_test_alert_the_receiver_refuses_exits_1_with_its_answer(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.slack.script([Fault(Answer(400, "invalid_payload\nsee the docs"))])
    done = synthetic(capsys, "alerts", "test", "--receiver", "slack-ops")
    assert done.code == 1
    lines = done.out.splitlines()
    assert lines[0] == "slack-ops: test trigger: rejected (HTTP 400: invalid_payload see the docs)"
    assert len(project.slack.requests) == 2  # no retry of a 400; the resolve still goes
    assert len(lines) == 2


def test_a_test_alert_with_the_wrong_routing_key_exits_1(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "x" * 32
    monkeypatch.setenv("PD_ROUTING_KEY", wrong)
    done = synthetic(capsys, "alerts", "test", "--receiver", "pagerduty-oncall")
    assert done.code == 1
    assert done.out.splitlines()[0].startswith(
        "pagerduty-oncall: test trigger: rejected (HTTP 400: "
    )
    assert "Invalid routing key" in done.out
    assert wrong not in done.out + done.err
    assert project.pagerduty.events == []


def test_a_test_alert_for_a_receiver_whose_variable_is_unset(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    done = synthetic(capsys, "alerts", "test", "--receiver", "webhook-unset")
    assert done.code == 1
    assert done.out.splitlines()[0] == (
        "webhook-unset: test trigger: failed (not ready: environment variable "
        "UNSET_HOOK_URL (for url) is not set)"
    )


def test_an_unknown_receiver_exits_2_naming_it(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    done = synthetic(capsys, "alerts", "test", "--receiver", "pager-duty")
    assert done.code == 2
    line = one_error_line(done, "alerts")
    assert "no receiver named 'pager-duty'" in line
    assert "(defined: opsgenie, pagerduty-oncall, slack-ops, webhook-unset)" in line
    assert project.pagerduty.requests == project.slack.requests == []


def test_a_custom_receiver_is_tested_through_a_run_not_here(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    done = synthetic(capsys, "alerts", "test", "--receiver", "opsgenie")
    assert done.code == 2
    line = one_error_line(done, "alerts")
    assert "receiver 'opsgenie' is custom" in line
    assert "pytest_synthetic_alert_send" in line


# --- silence -------------------------------------------------------------------------------------


def listed(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    done = synthetic(capsys, "silence", "list", "--json")
    assert done.code == 0, done.err
    rows: list[dict[str, Any]] = json.loads(done.out)
    return rows


def test_silence_add_list_remove(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    added = synthetic(
        capsys,
        "silence", "add", "--metric", "queue.size", "--component", "queues", "--for", "2h",
        "--reason", "WHMCS maintenance",
    )  # fmt: skip
    assert added.code == 0, added.err
    words = added.out.split()
    assert words[0] == "silence"
    silence_id = words[1]
    assert silence_id.startswith("s-")
    assert added.out.rstrip().endswith(f"({ENVIRONMENT})")

    rows = listed(capsys)
    [config_row] = [r for r in rows if r["source"] == "config"]
    assert config_row["matchers"] == {"metric": ["disk.*"]}
    [row] = [r for r in rows if r["source"] == "store"]
    assert row["id"] == silence_id
    assert row["matchers"] == {"metric": ["queue.size"], "component": ["queues"]}
    assert row["reason"] == "WHMCS maintenance"
    assert row["until"] == pytest.approx(time.time() + 7200, abs=30)
    assert row["created_by"]

    text = synthetic(capsys, "silence", "list")
    assert text.code == 0
    [line] = [line for line in text.out.splitlines() if line.startswith(silence_id)]
    assert " metric=queue.size " in line
    assert " component=queues " in line
    assert line.endswith("WHMCS maintenance")
    assert "[store, " in line
    assert text.out.splitlines()[-1] == "2 active silence(s)"

    removed = synthetic(capsys, "silence", "remove", silence_id)
    assert (removed.code, removed.out) == (0, f"removed silence {silence_id}\n")
    assert [r["source"] for r in listed(capsys)] == ["config"]
    again = synthetic(capsys, "silence", "remove", silence_id)
    assert again.code == 1
    assert again.err == f"synthetic silence: no silence '{silence_id}'\n"


def test_silence_until_a_time(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    until = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=3)
    stamp = until.replace(microsecond=0, tzinfo=None).isoformat()  # no zone: UTC
    done = synthetic(capsys, "silence", "add", "--check", "check_portal.py::*", "--until", stamp)
    assert done.code == 0, done.err
    [row] = [r for r in listed(capsys) if r["source"] == "store"]
    assert row["until"] == pytest.approx(until.timestamp(), abs=2)
    assert row["matchers"] == {"check": ["check_portal.py::*"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "x", "--until", PAST], f"--until {PAST}: that is in the past"),
        (["--for", "1h"], "a silence needs at least one of --check, --metric, --component"),
        (["--metric", "x", "--until", "tuesday"], "--until 'tuesday': expected an ISO 8601 time"),
        (["--metric", "x", "--for", "a while"], "expected a duration like '90s', '2m' or '4h'"),
    ],
    ids=["until-in-the-past", "no-matcher", "until-not-a-time", "for-not-a-duration"],
)
def test_a_silence_that_cannot_be_exits_2_and_adds_nothing(
    project: Project, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    done = synthetic(capsys, "silence", "add", *args)
    assert done.code == 2
    assert message in one_error_line(done, "silence")
    assert [r["source"] for r in listed(capsys)] == ["config"]


def test_a_silence_of_no_duration_names_the_option_given(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    done = synthetic(capsys, "silence", "add", "--metric", "x", "--for", "0s")
    assert done.code == 2
    line = one_error_line(done, "silence")
    assert "None" not in line
    assert "--for 0s" in line
