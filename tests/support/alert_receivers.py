"""Stand-in alert receivers on loopback: PagerDuty, Slack, a generic webhook.

Each is a real HTTP server on ``127.0.0.1`` and a port of its own, run in a
thread. It validates what it receives against the service's documented
fields and limits (REFERENCE.md), answers as the service does, and records
every request. It can be scripted to answer a sequence of faults first::

    with PagerDutyStandIn() as pd:
        pd.script([throttle(retry_after=1), server_error(500), drop(), slow(2.0)])
        receiver = Receiver(name="pd", type="pagerduty", url=pd.url, routing_key="R" * 32)
        ...  # deliver
        assert len(pd.requests) == 5  # four faults, then the real answer
        assert pd.events[0]["event_action"] == "trigger"  # the accepted bodies

`WebhookStandIn` accepts any JSON (Alertmanager's webhook target too); its
`wait_for` waits for deliveries that arrive on their own schedule. `drip`
scripts a hostile answer that never completes (its status line, its headers
or its body a byte at a time); `DripSMTP` is an SMTP server that does the
same with its greeting or with its answer to the mail. The
fixtures ``pagerduty_stand_in``, ``slack_stand_in`` and ``webhook_stand_in``
give a fresh one per test (``pytest_plugins = ["tests.support.alert_receivers"]``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from synthetic.alerts.model import Alert
from synthetic.sandbox.processes import LOOPBACK, free_port

__all__ = [
    "AlertmanagerStandIn",
    "Answer",
    "DripSMTP",
    "Fault",
    "PagerDutyStandIn",
    "Received",
    "SlackStandIn",
    "StandIn",
    "WebhookStandIn",
    "alertmanager_changes",
    "calling",
    "drip",
    "drop",
    "pagerduty_incidents",
    "pagerduty_stand_in",
    "server_error",
    "slack_stand_in",
    "slow",
    "throttle",
    "webhook_stand_in",
]

PAGERDUTY_SEVERITIES = frozenset({"critical", "error", "warning", "info"})
PAGERDUTY_ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})
PAGERDUTY_MAX_BODY = 512_000
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION = 3000
SLACK_MAX_HEADER = 150


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, body and headers."""

    status: int
    body: str | bytes = ""  # bytes are sent as they are (a compressed body)
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def json(cls, status: int, data: Any, **headers: str) -> Answer:
        return cls(status, json.dumps(data), headers, "application/json")


@dataclass(frozen=True)
class Fault:
    """One scripted answer, used instead of the stand-in's own.

    ``delay_s``: wait that long first (a slow receiver). ``drop``: then close
    the connection without a word. ``answer``: then answer this; when None
    (and not dropped) the stand-in answers as usual, validating the body.
    """

    answer: Answer | None = None
    delay_s: float = 0.0
    drop: bool = False
    drip: Drip | None = None
    before: Callable[[], None] | None = None  # run first (e.g. take the store away)


@dataclass(frozen=True)
class Drip:
    """An answer that never completes: ``part`` ("status", "headers" or
    "body") is sent a byte every ``every_s`` until the client hangs up (or
    ``for_s`` has passed); what comes before it is sent at once."""

    part: str
    status: int
    every_s: float
    for_s: float


def throttle(retry_after: float | str | None = 1, status: int = 429) -> Fault:
    """429 Too Many Requests with ``Retry-After`` (seconds or an HTTP date; None: no header)."""
    headers = {} if retry_after is None else {"Retry-After": _number(retry_after)}
    return Fault(Answer(status, "rate_limited", headers))


def server_error(status: int = 500, body: str = "internal_error") -> Fault:
    """A 5xx (or any status) with a plain-text body."""
    return Fault(Answer(status, body))


def slow(delay_s: float) -> Fault:
    """Answer as usual, but only after ``delay_s`` (longer than the client's timeout)."""
    return Fault(delay_s=delay_s)


def drop() -> Fault:
    """Read the request, then close the connection without answering."""
    return Fault(drop=True)


def calling(action: Callable[[], None]) -> Fault:
    """Run ``action``, then answer as usual: the service has the alert, and
    ``action`` (taking the sender's store away, say) happened before its
    sender could learn so."""
    return Fault(before=action)


def drip(
    part: str = "body", *, status: int = 202, every_s: float = 0.1, for_s: float = 60.0
) -> Fault:
    """Answer ``status`` but drip ``part`` ("status", "headers", "body") a byte
    every ``every_s``, never finishing: each read is quick, the answer never
    ends (a chunked body; a header line that goes on). Recorded with
    ``status`` once the status line is out (``part`` "headers" or "body"),
    None otherwise, and ``lasted_s``: how long until the client hung up."""
    if part not in ("status", "headers", "body"):
        raise ValueError(f"drip: part must be status, headers or body, not {part!r}")
    return Fault(drip=Drip(part, status, every_s, for_s))


@dataclass(frozen=True)
class Received:
    """One request as the stand-in saw it, and what it answered (None: dropped).

    A slow answer counts as answered even when the client gave up waiting, as
    with the real service (which may have acted on it).
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    status: int | None
    lasted_s: float = 0.0  # a drip: from the request to the client hanging up

    def json(self) -> Any:
        return json.loads(self.body)


class StandIn:
    """An HTTP server on loopback that records requests and answers `handle`'s way.

    Subclasses override `handle` (validate and answer one JSON body). Use as
    a context manager; `close` stops the server, wakes slow answers, and
    joins every thread.
    """

    path = "/"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._faults: list[Fault] = []
        self._received: list[Received] = []
        self._arrivals = 0
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server((LOOPBACK, 0), _handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        server.shutdown()
        server.server_close()  # joins the request threads
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # What tests use

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        port: int = self._server.server_address[1]
        return port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The endpoint to configure the receiver with."""
        return self.base_url + self.path

    def script(self, faults: Iterable[Fault]) -> None:
        """Answer the next requests with ``faults``, in order; then as usual."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def requests(self) -> list[Received]:
        """Every request received so far, faulted ones included."""
        with self._lock:
            return list(self._received)

    @property
    def accepted(self) -> list[Any]:
        """The JSON bodies answered with 2xx, in order (requests without a body left out)."""
        return [r.json() for r in self.requests if r.body and r.status and r.status < 300]

    def wait_for(
        self, condition: Callable[[list[Any]], bool], *, timeout_s: float = 5.0
    ) -> list[Any]:
        """Wait until ``condition(accepted)`` holds; return ``accepted``.

        Fails the test, showing what arrived, when it does not within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            accepted = self.accepted
            if condition(accepted):
                return accepted
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(
                    f"{type(self).__name__}: not received within {timeout_s} s; got {accepted!r}",
                    pytrace=False,
                )
            with self._changed:
                self._changed.wait(min(left, 0.1))

    def wait_for_arrivals(self, count: int, *, timeout_s: float = 5.0) -> None:
        """Wait until ``count`` requests have been read (answered or not yet)."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._arrivals >= count, timeout_s):
                pytest.fail(
                    f"{type(self).__name__}: {self._arrivals} requests within {timeout_s} s, "
                    f"not {count}",
                    pytrace=False,
                )

    def handle(self, method: str, path: str, body: Any) -> Answer:
        """The answer to a JSON ``body`` (``None`` when it was not JSON)."""
        return Answer(200, "ok")

    # Called from the server's threads

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _record(self, received: Received) -> None:
        with self._changed:
            self._received.append(received)
            self._changed.notify_all()

    def _arrived(self) -> None:
        with self._changed:
            self._arrivals += 1
            self._changed.notify_all()

    def _sleep(self, seconds: float) -> None:
        self._closing.wait(seconds)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timed out, or the test dropped it) makes the
        # answer fail to send: expected, not worth a traceback on stderr.
        pass


def _handler(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            stand_in._arrived()
            fault = stand_in._next_fault()
            headers = {k.lower(): v for k, v in self.headers.items()}
            if fault is not None and fault.before is not None:
                fault.before()
            if fault is not None and fault.delay_s:
                stand_in._sleep(fault.delay_s)
            if fault is not None and fault.drop:
                stand_in._record(Received(self.command, self.path, headers, raw, None))
                self.close_connection = True
                return
            if fault is not None and fault.drip is not None:
                lasted_s = self._drip(fault.drip)
                status = None if fault.drip.part == "status" else fault.drip.status
                received = Received(self.command, self.path, headers, raw, status, lasted_s)
                stand_in._record(received)
                self.close_connection = True
                return
            if fault is not None and fault.answer is not None:
                answer = fault.answer
            else:
                answer = stand_in.handle(self.command, self.path, _json_or_none(raw))
            stand_in._record(Received(self.command, self.path, headers, raw, answer.status))
            data = answer.body if isinstance(answer.body, bytes) else answer.body.encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _drip(self, drip: Drip) -> float:
            """Send ``drip``'s answer, its dripping part a byte at a time; the
            seconds until the client hung up (or the drip or the stand-in ended)."""
            started = time.monotonic()
            status_line = f"HTTP/1.1 {drip.status} Dripping\r\n".encode()
            head = status_line + b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
            sent = {"status": b"", "headers": status_line, "body": head + b"\r\n"}[drip.part]
            assert status_line[:13] == f"HTTP/1.1 {drip.status} ".encode()
            endless = {
                "status": status_line[:13] + b"d" * 100_000,  # "HTTP/1.1 202 " and on
                "headers": b"X-Drip: " + b"d" * 100_000,
                "body": b"1\r\nd\r\n" * 100_000,
            }[drip.part]
            try:
                self.wfile.write(sent)
                self.wfile.flush()
                for byte in endless:
                    if time.monotonic() - started >= drip.for_s or stand_in._closing.is_set():
                        break
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    stand_in._sleep(drip.every_s)
            except OSError:  # the client hung up: what a drip waits for
                pass
            return time.monotonic() - started

    return Handler


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _number(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


class PagerDutyStandIn(StandIn):
    """PagerDuty Events API v2 (``POST /v2/enqueue``).

    202 ``{"status": "success", ...}`` for a valid event; 400 ``{"status":
    "invalid event", "message": "Event object is invalid", "errors": [...]}``
    otherwise. ``routing_key``, when given, is the only key it knows.
    """

    path = "/v2/enqueue"

    def __init__(self, *, routing_key: str | None = None) -> None:
        super().__init__()
        self.routing_key = routing_key

    @property
    def events(self) -> list[Any]:
        """The events it accepted (202), in order."""
        return self.accepted

    def handle(self, method: str, path: str, body: Any) -> Answer:
        if method != "POST" or path != self.path:
            return Answer.json(404, {"status": "not found", "message": f"no route {path}"})
        errors = pagerduty_errors(body, routing_key=self.routing_key)
        if errors:
            return Answer.json(
                400,
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
            )
        return Answer.json(
            202,
            {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]},
        )


def pagerduty_errors(body: Any, *, routing_key: str | None = None) -> list[str]:
    """What PagerDuty would find wrong with an Events API v2 body (empty: valid)."""
    if not isinstance(body, dict):
        return ["Event object must be a JSON object"]
    errors = []
    if len(json.dumps(body)) > PAGERDUTY_MAX_BODY:
        errors.append("Event object is larger than 512 KB")
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    elif routing_key is not None and key != routing_key:
        errors.append("Invalid routing key")
    action = body.get("event_action")
    if action not in PAGERDUTY_ACTIONS:
        errors.append("'event_action' is invalid (must be one of trigger, acknowledge, resolve)")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve"):
        if not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        return errors
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "'payload' is missing or not an object"]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary:
        errors.append("'payload.summary' is missing")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is longer than 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"]:
        errors.append("'payload.source' is missing")
    if payload.get("severity") not in PAGERDUTY_SEVERITIES:
        errors.append("'payload.severity' is invalid (must be critical, error, warning or info)")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


class SlackStandIn(StandIn):
    """A Slack incoming webhook: 200 ``ok``; 400 ``invalid_payload`` (plain text)."""

    path = "/services/T0000/B0000/stand-in-webhook-secret"

    @property
    def messages(self) -> list[Any]:
        """The messages it accepted (200), in order."""
        return self.accepted

    def handle(self, method: str, path: str, body: Any) -> Answer:
        if method != "POST" or path != self.path:
            return Answer(404, "no_service")
        if slack_errors(body):
            return Answer(400, "invalid_payload")
        return Answer(200, "ok")


def slack_errors(body: Any) -> list[str]:
    """What Slack would find wrong with an incoming-webhook body (empty: valid)."""
    if not isinstance(body, dict):
        return ["not a JSON object"]
    errors = []
    if not isinstance(body.get("text"), str) or not body["text"].strip():
        errors.append("no text fallback")
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list):
        return [*errors, "blocks is not a list"]
    if len(blocks) > SLACK_MAX_BLOCKS:
        errors.append(f"{len(blocks)} blocks (at most {SLACK_MAX_BLOCKS})")
    for n, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"blocks[{n}] has no type")
            continue
        text = block.get("text")
        content = text.get("text") if isinstance(text, dict) else None
        if block["type"] == "header":
            if not isinstance(content, str) or len(content) > SLACK_MAX_HEADER:
                errors.append(f"blocks[{n}]: header text missing or over {SLACK_MAX_HEADER}")
        elif block["type"] == "section":
            if text is None and not block.get("fields"):
                errors.append(f"blocks[{n}]: section without text or fields")
            if text is not None and (
                not isinstance(content, str) or len(content) > SLACK_MAX_SECTION
            ):
                errors.append(f"blocks[{n}]: section text missing or over {SLACK_MAX_SECTION}")
    return errors


class WebhookStandIn(StandIn):
    """A generic JSON webhook (Alertmanager's webhook target too): 200 for any JSON.

    A ``GET`` (a heartbeat ping) gets 200 too.
    """

    path = "/hook/stand-in-webhook-secret"

    @property
    def documents(self) -> list[Any]:
        """The JSON bodies it accepted (200), in order."""
        return self.accepted

    def handle(self, method: str, path: str, body: Any) -> Answer:
        if body is None and method != "GET":
            return Answer(400, "expected a JSON body")
        return Answer(200, "ok")


class AlertmanagerStandIn(StandIn):
    """Alertmanager's ``POST /api/v2/alerts``: 200 for an array of alerts with
    labels; 400 for anything else (422 for an alert without labels). Configure
    the receiver with `base_url` (it appends the path)."""

    path = "/api/v2/alerts"

    def handle(self, method: str, path: str, body: Any) -> Answer:
        if method != "POST" or path != self.path:
            return Answer(404, "not found")
        if not isinstance(body, list):
            return Answer(400, "expected an array of alerts")
        if not all(isinstance(a, dict) and isinstance(a.get("labels"), dict) for a in body):
            return Answer(422, "labels missing")
        return Answer(200, "")


def pagerduty_incidents(events: Iterable[Any]) -> list[tuple[str, str]]:
    """What PagerDuty shows for ``events``: each (dedup_key, "trigger" or
    "resolve") that changed an alert. A trigger of an open alert is folded
    into it; a resolve of one that is not open changes nothing (Events API v2)."""
    open_keys: set[str] = set()
    shown = []
    for event in events:
        key, action = event["dedup_key"], event["event_action"]
        if action == "trigger" and key not in open_keys:
            open_keys.add(key)
            shown.append((key, action))
        elif action == "resolve" and key in open_keys:
            open_keys.remove(key)
            shown.append((key, action))
    return shown


def alertmanager_changes(posts: Iterable[Any], *, now: float) -> list[tuple[str, str]]:
    """What Alertmanager shows for ``posts`` (arrays of alerts): each (labels,
    "firing" or "resolved") that changed an alert it holds. Labels identify an
    alert; posting it again as it is changes nothing; an ``endsAt`` not after
    ``now`` is resolved."""
    state: dict[str, str] = {}
    shown = []
    for post in posts:
        for alert in post:
            key = json.dumps(alert["labels"], sort_keys=True)
            ends = alert.get("endsAt")
            new = "resolved" if ends is not None and _epoch(ends) <= now else "firing"
            if state.get(key, "resolved") != new:
                shown.append((key, new))
            state[key] = new
    return shown


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.fixture
def pagerduty_stand_in() -> Iterator[PagerDutyStandIn]:
    """A fresh PagerDuty stand-in for one test."""
    with PagerDutyStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def slack_stand_in() -> Iterator[SlackStandIn]:
    """A fresh Slack stand-in for one test."""
    with SlackStandIn() as stand_in:
        yield stand_in


@pytest.fixture
def webhook_stand_in() -> Iterator[WebhookStandIn]:
    """A fresh generic webhook stand-in for one test."""
    with WebhookStandIn() as stand_in:
        yield stand_in


def make_alert(**changes: Any) -> Alert:
    """A realistic critical alert, with ``changes`` applied."""
    fields: dict[str, Any] = {
        "dedup_key": "health.status@production",
        "action": "trigger",
        "severity": "critical",
        "summary": "status is 'degraded' (critical when != 'ok')",
        "environment": "production",
        "metric": "health.status",
        "check_id": "checks/check_health.py::check_status",
        "priority": "P1",
        "runbook": "https://portal.example.com/docs/runbooks/health",
        "started_at": "2025-01-02T03:04:05Z",
        "run_id": "run-42",
        "labels": {"queue": "email"},
        "component": "bff",
        "value": "degraded",
        "warning": "!= 'ok'",
        "critical": "== 'down'",
        "target": "https://portal.example.com",
        "evidence_summary": '{"status": "degraded"}',
    }
    fields.update(changes)
    return Alert(**fields)


class Mailbox:
    """An aiosmtpd handler: keeps what it accepts, refuses recipients on request."""

    def __init__(
        self, rcpt_answer: str | None = None, *, on_data: Callable[[], None] | None = None
    ) -> None:
        self.envelopes: list[Envelope] = []
        self.rcpt_answer = rcpt_answer
        self.rcpt_count = 0
        # Run once the mail is kept, before the 250 that tells the sender.
        self.on_data = on_data

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook names
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        self.rcpt_count += 1
        if self.rcpt_answer:
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        if self.on_data is not None:
            self.on_data()
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(bytes(e.original_content or b""), policy=policy.default)
            for e in self.envelopes
        ]


def smtp_server(handler: Mailbox, **options: Any) -> Controller:
    """A real SMTP server (aiosmtpd) on a free loopback port; stop it when done."""
    controller = Controller(handler, hostname=LOOPBACK, port=free_port(), **options)
    controller.start()
    return controller


class DripSMTP:
    """An SMTP server on loopback that drips: its greeting (``when="greeting"``),
    or its answer to the mail once it has read all of it (``when="data"``: the
    server has the mail; the client never learns it). A dripped answer is an
    endless multi-line reply (``250-...``), a byte every ``every_s``, until
    the client hangs up; each dripped conversation's duration is in `lasted_s`
    and each mail read in `mails`.
    """

    def __init__(self, *, when: str = "data", every_s: float = 0.1, for_s: float = 60.0) -> None:
        if when not in ("greeting", "data"):
            raise ValueError(f"DripSMTP: when must be greeting or data, not {when!r}")
        self.when, self.every_s, self.for_s = when, every_s, for_s
        self.mails: list[bytes] = []
        self.lasted_s: list[float] = []
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._start(self._accept)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._listener.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def _start(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._start(self._converse, client)

    def _converse(self, client: socket.socket) -> None:
        started = time.monotonic()
        with client, client.makefile("rb") as lines:
            try:
                if self.when == "greeting":
                    self._drip(client, started)
                    return
                client.sendall(b"220 drip.example ESMTP\r\n")
                while line := lines.readline():
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        client.sendall(b"250 drip.example\r\n")
                    elif verb == b"DATA":
                        client.sendall(b"354 go ahead\r\n")
                        mail = b"".join(iter(lines.readline, b".\r\n"))
                        with self._lock:
                            self.mails.append(mail)
                        self._drip(client, started)
                        return
                    elif verb == b"QUIT":
                        client.sendall(b"221 bye\r\n")
                        return
                    else:  # MAIL, RCPT, RSET, NOOP
                        client.sendall(b"250 OK\r\n")
            except OSError:
                return

    def _drip(self, client: socket.socket, started: float) -> None:
        code = b"220" if self.when == "greeting" else b"250"
        try:
            while time.monotonic() - started < self.for_s and not self._closing.is_set():
                for byte in code + b"-dripping\r\n":
                    client.sendall(bytes([byte]))
                    self._closing.wait(self.every_s)
        except OSError:  # the client hung up
            pass
        with self._lock:
            self.lasted_s.append(time.monotonic() - started)
