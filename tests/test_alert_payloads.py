"""Payload builders: every receiver's documented limits hold for any alert."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthetic.alerts.model import Alert
from synthetic.alerts.payloads import (
    alertmanager,
    email,
    one_line,
    pagerduty,
    slack,
    truncate,
    webhook,
)
from tests.support.alert_receivers import make_alert as make

ROUTING_KEY = "R" * 32
MAX_EXAMPLES = 60

# Text that breaks naive builders: controls, line breaks, bidi overrides,
# Slack's special characters, astral code points; sometimes very long.
_NASTY = "\r\n\t\x00\x1b\x7f\x85\u2028\u2029\u202e&<>|*_`~\"'\\é漢😀"
_chars = st.one_of(st.characters(codec="utf-8"), st.sampled_from(_NASTY))
_short = st.text(_chars, max_size=40)
_long = st.builds(lambda s, n: s * n, st.text(_chars, min_size=1, max_size=8), st.integers(1, 4000))
text = st.one_of(_short, _short, _long)

_zones = st.sampled_from(
    [
        datetime.UTC,
        datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
        datetime.timezone(datetime.timedelta(hours=-8)),
    ]
)
moments = st.datetimes(
    min_value=datetime.datetime(2000, 1, 1),
    max_value=datetime.datetime(2100, 1, 1),
    timezones=_zones,
)
times = moments.map(lambda m: m.isoformat())
values = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    _short,
    st.lists(st.integers(), max_size=5),
    st.dictionaries(_short, st.integers(), max_size=3),
)
label_names = st.one_of(st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True), _short)
runbooks = st.one_of(
    st.none(),
    st.from_regex(r"https://portal\.example\.com/docs/runbooks/[a-z0-9-]{1,40}", fullmatch=True),
    text.map(lambda s: "https://example.com/" + s),
)

alerts = st.builds(
    Alert,
    dedup_key=st.one_of(st.from_regex(r"[a-z.]{1,30}@[a-z]{1,12}", fullmatch=True), text),
    action=st.sampled_from(["trigger", "resolve"]),
    severity=st.sampled_from(["critical", "warning", "info"]),
    summary=text,
    environment=st.one_of(st.sampled_from(["production", "staging", "sandbox"]), text),
    metric=st.one_of(st.sampled_from(["health.status", "bullmq.waiting", "http.p95"]), text),
    check_id=text,
    priority=st.sampled_from(["P1", "P2", "P3", "P4"]),
    runbook=runbooks,
    started_at=times,
    run_id=text,
    labels=st.dictionaries(label_names, text, max_size=6),
    component=st.one_of(st.none(), text),
    value=values,
    unit=st.one_of(st.none(), st.sampled_from(["ms", "jobs", "%"]), _short),
    warning=st.one_of(st.none(), text),
    critical=st.one_of(st.none(), text),
    target=st.one_of(st.none(), st.just("https://portal.example.com"), text),
    ended_at=st.one_of(st.none(), times),
    evidence_summary=st.one_of(st.none(), text),
    test=st.booleans(),
)


def resolved(alert: Alert) -> Alert:
    return dataclasses.replace(alert, action="resolve", severity=alert.severity)


def strict_json(data: Any) -> Any:
    return json.loads(json.dumps(data, allow_nan=False))


def every_builder(alert: Alert) -> list[Any]:
    return [
        pagerduty.event(alert, routing_key=ROUTING_KEY),
        slack.message(alert),
        alertmanager.alerts([alert]),
        email.message(alert, sender="alerts@example.com", recipients=["oncall@example.com"]),
        webhook.document(alert),
    ]


# truncate


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abc", 3, "abc"),
        ("abcd", 3, "ab…"),
        ("abcd", 1, "…"),
        ("abcd", 0, ""),
        ("", 0, ""),
        ("漢字漢字", 3, "漢字…"),
        ("😀😀", 2, "😀😀"),
    ],
)
def test_truncate_table(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_truncate_rejects_a_negative_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        truncate("abc", -1)


@given(text, st.integers(0, 5000))
def test_truncate_never_exceeds_and_keeps_short_text(value: str, limit: int) -> None:
    cut = truncate(value, limit)
    assert len(cut) <= limit
    if len(value) <= limit:
        assert cut == value
    else:
        assert cut.endswith("…") or limit == 0
        assert value.startswith(cut[:-1])


@given(text)
def test_one_line_has_no_line_breaks_or_controls(value: str) -> None:
    line = one_line(value)
    assert "\r" not in line
    assert "\n" not in line
    assert not any(ord(c) < 32 or c in "\x7f\x85\u2028\u2029\u202e" for c in line)


# PagerDuty


@settings(max_examples=MAX_EXAMPLES)
@given(alerts)
def test_pagerduty_event_respects_limits_and_carries_runbook_and_priority(alert: Alert) -> None:
    body = strict_json(pagerduty.event(alert, routing_key=ROUTING_KEY))
    assert len(body["dedup_key"]) <= pagerduty.MAX_DEDUP_KEY
    assert len(json.dumps(body).encode()) <= pagerduty.MAX_BODY_BYTES
    assert body["routing_key"] == ROUTING_KEY
    if alert.action == "resolve":
        assert body == {
            "routing_key": ROUTING_KEY,
            "dedup_key": body["dedup_key"],
            "event_action": "resolve",
        }
        return
    payload = body["payload"]
    assert body["event_action"] == "trigger"
    assert body["client"] == "synthetic"
    assert 0 < len(payload["summary"]) <= pagerduty.MAX_SUMMARY
    assert payload["source"]
    assert payload["severity"] == alert.severity
    assert payload["timestamp"] == alert.started_at
    assert alert.priority in payload["summary"]
    assert payload["custom_details"]["priority"] == alert.priority
    assert payload["summary"].startswith("[TEST] ") == alert.test
    if alert.runbook:
        assert body["links"][0]["href"] == truncate(alert.runbook, pagerduty.MAX_URL)
        assert body["links"][0]["text"].startswith("Runbook: ")
    else:
        assert "links" not in body


def test_pagerduty_trigger_in_full() -> None:
    body = pagerduty.event(make(), routing_key=ROUTING_KEY, client_url="https://ci.example.com/1")
    assert body["client_url"] == "https://ci.example.com/1"
    assert body["dedup_key"] == "health.status@production"
    assert body["links"] == [
        {
            "href": "https://portal.example.com/docs/runbooks/health",
            "text": "Runbook: https://portal.example.com/docs/runbooks/health",
        }
    ]
    payload = body["payload"]
    assert payload["summary"] == (
        "CRITICAL P1 health.status (production): status is 'degraded' (critical when != 'ok')"
    )
    assert payload["source"] == "portal.example.com"
    assert payload["group"] == "production"
    assert payload["class"] == "health.status"
    assert payload["component"] == "bff"
    details = payload["custom_details"]
    assert details["value"] == "degraded"
    assert details["warning_threshold"] == "!= 'ok'"
    assert details["critical_threshold"] == "== 'down'"
    assert details["environment"] == "production"
    assert details["labels"] == {"queue": "email"}
    assert details["check_id"] == "checks/check_health.py::check_status"
    assert details["run_id"] == "run-42"
    assert details["evidence_summary"] == '{"status": "degraded"}'


def test_pagerduty_source_falls_back_to_the_environment() -> None:
    body = pagerduty.event(make(target=None), routing_key=ROUTING_KEY)
    assert body["payload"]["source"] == "production"


@settings(max_examples=MAX_EXAMPLES)
@given(alerts)
def test_pagerduty_trigger_and_resolve_share_the_dedup_key(alert: Alert) -> None:
    trigger = dataclasses.replace(alert, action="trigger")
    one = pagerduty.event(trigger, routing_key=ROUTING_KEY)
    two = pagerduty.event(resolved(trigger), routing_key=ROUTING_KEY)
    assert one["dedup_key"] == two["dedup_key"]


def test_pagerduty_long_dedup_key_is_hashed_stably() -> None:
    long_a, long_b = "k" * 300 + "a", "k" * 300 + "b"
    key_a = pagerduty.dedup_key(long_a)
    assert len(key_a) == pagerduty.MAX_DEDUP_KEY
    assert key_a == pagerduty.dedup_key(long_a)
    assert key_a != pagerduty.dedup_key(long_b)
    assert key_a.startswith("k" * 190 + "~")
    assert pagerduty.dedup_key("x" * 255) == "x" * 255
    body = pagerduty.event(make(dedup_key=long_a), routing_key=ROUTING_KEY)
    assert body["payload"]["custom_details"]["incident_key"] == long_a


def test_pagerduty_shrinks_evidence_first_to_fit_512_kb() -> None:
    alert = make(evidence_summary="é" * 600_000)
    body = pagerduty.event(alert, routing_key=ROUTING_KEY)
    assert len(json.dumps(body).encode()) <= pagerduty.MAX_BODY_BYTES
    details = body["payload"]["custom_details"]
    assert details["labels"] == {"queue": "email"}
    assert details["evidence_summary"].endswith("…")
    assert len(details["evidence_summary"]) > 10_000


def test_pagerduty_fits_512_kb_even_with_huge_labels() -> None:
    labels = {f"label_{i}": "v" * 5000 for i in range(200)}
    body = pagerduty.event(make(labels=labels), routing_key=ROUTING_KEY)
    assert len(json.dumps(body).encode()) <= pagerduty.MAX_BODY_BYTES
    assert body["payload"]["custom_details"]["priority"] == "P1"
    assert body["links"][0]["href"] == make().runbook


# Slack

_ENTITY = re.compile(r"&(?!amp;|lt;|gt;)")


def _mrkdwn_texts(message: dict[str, Any]) -> list[str]:
    texts = [message["text"]]
    for block in message["blocks"]:
        if block["type"] == "section":
            if "text" in block:
                texts.append(block["text"]["text"])
            texts += [f["text"] for f in block.get("fields", [])]
        if block["type"] == "context":
            texts += [e["text"] for e in block["elements"]]
    return texts


@settings(max_examples=MAX_EXAMPLES)
@given(alerts)
def test_slack_message_respects_limits_and_escapes(alert: Alert) -> None:
    message = strict_json(slack.message(alert))
    blocks = message["blocks"]
    assert 0 < len(blocks) <= slack.MAX_BLOCKS
    header = blocks[0]
    assert header["type"] == "header"
    assert 0 < len(header["text"]["text"]) <= slack.MAX_HEADER
    assert alert.priority in header["text"]["text"]
    assert ("[TEST]" in header["text"]["text"]) == alert.test
    assert ("RESOLVED" in header["text"]["text"]) == (alert.action == "resolve")
    for block in blocks:
        if block["type"] == "section" and "text" in block:
            assert 0 < len(block["text"]["text"]) <= slack.MAX_SECTION
        if block["type"] == "section" and "fields" in block:
            assert len(block["fields"]) <= 10
            assert all(0 < len(f["text"]) <= slack.MAX_FIELD for f in block["fields"])
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(0 < len(e["text"]) <= slack.MAX_CONTEXT for e in block["elements"])
    for mrkdwn in _mrkdwn_texts(message):
        assert "<" not in mrkdwn
        assert ">" not in mrkdwn
        assert not _ENTITY.search(mrkdwn)
    assert 0 < len(message["text"]) <= slack.MAX_FALLBACK
    assert message["text"].startswith("[TEST]") == alert.test
    context = blocks[-1]["elements"][0]["text"]
    if alert.runbook and one_line(alert.runbook):
        assert context.startswith("Runbook: ")
        assert slack.fit(f"Runbook: {one_line(alert.runbook)}", slack.MAX_CONTEXT) == context
    else:
        assert context == "No runbook linked"


def test_slack_message_in_full() -> None:
    message = slack.message(make(summary="p95 > 500 & rising <fast>"))
    header, reason, facts, evidence, actions, context = message["blocks"]
    assert header["text"]["text"] == ":rotating_light: CRITICAL P1 health.status (production)"
    assert reason["text"]["text"] == "p95 &gt; 500 &amp; rising &lt;fast&gt;"
    fields = [f["text"] for f in facts["fields"]]
    assert "*Value*\ndegraded" in fields
    assert "*Thresholds*\nwarning: != 'ok'; critical: == 'down'" in fields
    assert "*Environment*\nproduction" in fields
    assert "*Priority*\nP1" in fields
    assert "*Component*\nbff" in fields
    assert evidence["text"]["text"].startswith("Evidence:\n")
    assert actions["elements"][0]["url"] == "https://portal.example.com/docs/runbooks/health"
    assert context["elements"][0]["text"].startswith("Runbook: https://portal.example.com")
    assert message["text"].startswith("CRITICAL P1 health.status (production) | runbook: https://")


def test_slack_resolved_and_test_alerts_say_so() -> None:
    done = slack.message(make(action="resolve", ended_at="2025-01-02T03:10:00Z"))
    assert done["blocks"][0]["text"]["text"].startswith(":white_check_mark: RESOLVED P1")
    assert done["blocks"][1]["text"]["text"].startswith("Resolved: ")
    assert done["text"].startswith("RESOLVED P1")
    test = slack.message(make(test=True))
    assert "[TEST] CRITICAL P1" in test["blocks"][0]["text"]["text"]
    assert "test alert" in test["blocks"][1]["text"]["text"]


def test_slack_button_only_for_a_usable_url() -> None:
    message = slack.message(make(runbook="docs/runbooks/health.md"))
    assert all(block["type"] != "actions" for block in message["blocks"])
    assert message["blocks"][-1]["elements"][0]["text"] == "Runbook: docs/runbooks/health.md"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("a&b", 10, "a&amp;b"),
        ("<<<<", 10, "&lt;&lt;…"),
        ("&&&", 5, "…"),
        ("plain", 5, "plain"),
    ],
)
def test_slack_fit_never_splits_an_entity(text: str, limit: int, expected: str) -> None:
    assert slack.fit(text, limit) == expected


# Alertmanager

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


@settings(max_examples=MAX_EXAMPLES)
@given(alerts)
def test_alertmanager_alert_is_valid_and_resolves_its_trigger(alert: Alert) -> None:
    trigger = dataclasses.replace(alert, action="trigger")
    posted = strict_json(
        alertmanager.alerts([trigger, resolved(trigger)], generator_url="http://g")
    )
    firing, done = posted
    for item in posted:
        assert all(_LABEL_NAME.fullmatch(name) for name in item["labels"])
        assert all(isinstance(v, str) and v for v in item["labels"].values())
        assert item["labels"]["alertname"]
        assert item["labels"]["priority"] == alert.priority
        assert item["labels"]["severity"] == alert.severity
        assert item["generatorURL"] == "http://g"
        assert item["annotations"]["summary"].startswith("[TEST] ") == alert.test
        assert len(item["annotations"]["summary"]) <= alertmanager.MAX_SUMMARY
        assert item["annotations"].get("runbook_url") == (alert.runbook or None)
        assert _time(item["startsAt"]) == _time(alert.started_at)
    assert firing["labels"] == done["labels"]
    assert "endsAt" not in firing
    assert _time(done["endsAt"]) >= _time(done["startsAt"])
    if alert.ended_at and _time(alert.ended_at) >= _time(alert.started_at):
        assert _time(done["endsAt"]) == _time(alert.ended_at)


def test_alertmanager_alert_in_full() -> None:
    (posted,) = alertmanager.alerts([make(action="resolve", ended_at="2025-01-02T04:04:05+01:00")])
    assert posted == {
        "labels": {
            "alertname": "health_status",
            "check_id": "checks/check_health.py::check_status",
            "component": "bff",
            "environment": "production",
            "priority": "P1",
            "queue": "email",
            "severity": "critical",
        },
        "annotations": {
            "summary": "RESOLVED P1 health.status (production): "
            "status is 'degraded' (critical when != 'ok')",
            "description": "status is 'degraded' (critical when != 'ok')\n"
            'Evidence: {"status": "degraded"}',
            "value": "degraded",
            "thresholds": "warning: != 'ok'; critical: == 'down'",
            "warning": "!= 'ok'",
            "critical": "== 'down'",
            "priority": "P1",
            "run_id": "run-42",
            "runbook_url": "https://portal.example.com/docs/runbooks/health",
        },
        "startsAt": "2025-01-02T03:04:05Z",
        "endsAt": "2025-01-02T03:04:05Z",
    }


@pytest.mark.parametrize(
    ("ended_at", "ends"),
    [
        (None, "2025-01-02T03:04:05Z"),
        ("2025-01-01T00:00:00Z", "2025-01-02T03:04:05Z"),
        ("2025-01-02T03:09:00", "2025-01-02T03:09:00Z"),
        ("not a time", "2025-01-02T03:04:05Z"),
    ],
)
def test_alertmanager_ends_never_before_starts(ended_at: str | None, ends: str) -> None:
    (posted,) = alertmanager.alerts([make(action="resolve", ended_at=ended_at)])
    assert posted["endsAt"] == ends


def test_alertmanager_resolve_without_any_time_is_refused() -> None:
    with pytest.raises(ValueError, match="resolve needs"):
        alertmanager.alerts([make(action="resolve", started_at="soon", ended_at=None)])


@pytest.mark.parametrize(
    ("expires_at", "ends"),
    [
        (datetime.datetime(2025, 1, 2, 3, 19, 5, tzinfo=datetime.UTC), "2025-01-02T03:19:05Z"),
        (
            datetime.datetime(
                2025, 1, 2, 4, 19, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
            ),
            "2025-01-02T03:19:05Z",
        ),
        (datetime.datetime(2025, 1, 2, 3, 19, 5), "2025-01-02T03:19:05Z"),  # naive is UTC
        (datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC), "2025-01-02T03:04:05Z"),  # clamped
    ],
)
def test_alertmanager_trigger_expires_when_asked(expires_at: datetime.datetime, ends: str) -> None:
    (posted,) = alertmanager.alerts([make()], expires_at=expires_at)
    assert posted["endsAt"] == ends
    assert posted["startsAt"] == "2025-01-02T03:04:05Z"


def test_alertmanager_expiry_applies_to_triggers_only() -> None:
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    firing, done = alertmanager.alerts(
        [make(), make(action="resolve", ended_at="2025-01-02T03:09:00Z")], expires_at=expires
    )
    assert firing["endsAt"] == "2030-01-01T00:00:00Z"
    assert done["endsAt"] == "2025-01-02T03:09:00Z"
    assert "endsAt" not in alertmanager.alerts([make()])[0]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"queue-name": "a"}, {"queue_name": "a"}),
        ({"1st": "a"}, {"_1st": "a"}),
        ({"": "a"}, {"_": "a"}),
        ({"é": "a"}, {"_": "a"}),
        ({"a.b": "1", "a-b": "2"}, {"a_b": "2", "a_b_2": "1"}),
        ({"severity": "x"}, {"severity_2": "x"}),
        ({"empty": ""}, {}),
    ],
)
def test_alertmanager_label_names_are_sanitised_deterministically(
    names: dict[str, str], expected: dict[str, str]
) -> None:
    own = alertmanager.labels(make(labels={}))
    assert alertmanager.labels(make(labels=names)) == {**own, **expected}


def test_alertmanager_test_alerts_carry_a_test_label() -> None:
    assert alertmanager.labels(make(test=True))["test"] == "true"
    assert "test" not in alertmanager.labels(make())


# email


@settings(max_examples=MAX_EXAMPLES)
@given(alerts)
@pytest.mark.slow
def test_email_subject_is_one_line_and_body_carries_the_facts(alert: Alert) -> None:
    mail = email.message(alert, sender="Synthetic <alerts@example.com>", recipients=["a@b.c"])
    raw = mail.as_bytes()  # what SMTP sends: must serialise
    subject = str(mail["Subject"])
    assert "\r" not in subject
    assert "\n" not in subject
    assert 0 < len(subject) <= email.MAX_SUBJECT
    assert subject == email.subject(alert)
    assert subject.startswith("[TEST] ") == alert.test
    assert alert.priority in subject
    assert str(mail["X-Synthetic-Priority"]) == alert.priority
    assert str(mail["X-Synthetic-Dedup-Key"]) == truncate(one_line(alert.dedup_key), 255)
    assert str(mail["Message-ID"]).endswith("@example.com>")
    assert len(re.findall(rb"(?m)^Subject:", raw)) == 1
    body = mail.get_content()
    assert f"Priority:    {alert.priority}" in body
    assert f"Runbook:     {one_line(alert.runbook or '') or 'none linked'}" in body
    assert f"Run:         {one_line(alert.run_id)}" in body
    assert ("THIS IS A TEST ALERT" in body) == alert.test


def test_email_in_full() -> None:
    mail = email.message(
        make(summary="down\r\nBcc: victim@example.com"),
        sender="alerts@example.com",
        recipients=["oncall@example.com", "team@example.com"],
    )
    assert str(mail["Subject"]) == (
        "CRITICAL P1 health.status (production): down Bcc: victim@example.com"
    )
    assert "Bcc" not in mail
    assert str(mail["To"]) == "oncall@example.com, team@example.com"
    assert str(mail["X-Synthetic-Dedup-Key"]) == "health.status@production"
    body = mail.get_content()
    for line in (
        "Value:       degraded",
        "Thresholds:  warning: != 'ok'; critical: == 'down'",
        "Environment: production",
        "Runbook:     https://portal.example.com/docs/runbooks/health",
        "Run:         run-42",
    ):
        assert line in body


def test_email_threads_an_incident_and_ids_are_stable() -> None:
    trigger, resolve = make(), make(action="resolve", ended_at="2025-01-02T03:10:00Z")

    def send(alert: Alert) -> Any:
        return email.message(alert, sender="alerts@example.com", recipients=["o@example.com"])

    assert send(trigger)["Message-ID"] == send(trigger)["Message-ID"]
    assert send(trigger)["Message-ID"] != send(resolve)["Message-ID"]
    assert send(trigger)["References"] == send(resolve)["References"]


def test_email_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="recipient"):
        email.message(make(), sender="alerts@example.com", recipients=[])


# webhook


@settings(max_examples=MAX_EXAMPLES)
@given(alerts)
def test_webhook_document_has_every_field_and_is_json(alert: Alert) -> None:
    doc = strict_json(webhook.document(alert))
    assert doc["schema"] == "synthetic.alert/v1"
    for field in dataclasses.fields(Alert):
        assert field.name in doc
    assert doc["runbook"] == alert.runbook
    assert doc["priority"] == alert.priority
    assert doc["labels"] == dict(alert.labels)
    assert doc["test"] is alert.test
    assert doc["title"].startswith("[TEST] ") == alert.test


# all builders


@settings(max_examples=30)
@given(alerts)
def test_no_builder_mutates_the_alert(alert: Alert) -> None:
    labels = dict(alert.labels)
    alert = dataclasses.replace(alert, labels=labels)
    before = copy.deepcopy(alert)
    every_builder(alert)
    assert alert == before or alert.value != alert.value  # NaN is not equal to itself
    assert alert.labels == labels
